//go:build wasip1

// Command img-front is the image service's front door (docs/images.md):
// kind "http", input a gateway request envelope (route input "request"),
// reply a response envelope (route output "response"). It validates
// names, sizes and formats and answers bad input with a 4xx naming the
// problem before any other component runs:
//
//	PUT /img/NAME             store an original (img-storage put): 201
//	GET /img/NAME?w=&h=&fmt=  a variant (img-cache get, which converts on a miss)
//	GET /img/NAME             the original
//	GET /img/                 an HTML gallery of the originals and their variants
//
// Build (scripts/components/go.sh):
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -trimpath -buildvcs=false -o testdata/img-front.wasm ./components-src/go/img-front
package main

import (
	"bytes"
	"fmt"
	"html"
	"strings"

	tsubame "github.com/tsubame-rt/tsubame/abi/go"
	"github.com/tsubame-rt/tsubame/components-src/go/img-front/imgspec"
)

func init() { tsubame.HandleSeq("http", serve) }

const prefix = "/img/"

// status ends the request with a 4xx and a message.
func status(code uint32, format string, a ...any) error {
	return &tsubame.Error{Code: code, Msg: fmt.Sprintf(format, a...)}
}

func serve(c *tsubame.Seq) ([]byte, error) {
	method, target, body, err := parseEnvelope(c.Input())
	if err != nil {
		return nil, status(imgspec.BadRequest, "%v", err)
	}
	path, query, _ := strings.Cut(target, "?")
	if !strings.HasPrefix(path, prefix) {
		return nil, status(imgspec.NotFound, "no such page %q: images live under %s", path, prefix)
	}
	name := path[len(prefix):]
	switch {
	case name == "" && method == "GET":
		return gallery(c)
	case name == "":
		return nil, status(405, "%s %s: the gallery is GET only", method, prefix)
	case method == "PUT":
		if err := imgspec.ValidName(name); err != nil {
			return nil, status(imgspec.BadRequest, "%v", err)
		}
		if query != "" {
			return nil, status(imgspec.BadRequest, "PUT takes no query parameters")
		}
		if len(body) == 0 {
			return nil, status(imgspec.BadRequest, "the upload is empty: send a PNG or JPEG image as the body")
		}
		if len(body) > imgspec.MaxUpload {
			return nil, status(imgspec.TooLarge, "image of %d bytes is over the limit of %d", len(body), imgspec.MaxUpload)
		}
		in := make([]byte, 0, len(name)+1+len(body))
		in = append(append(append(in, name...), '\n'), body...)
		out, err := c.Call("img-storage", "put", in)
		if err != nil {
			return nil, err
		}
		return response(201, "text/plain; charset=utf-8", out), nil
	case method == "GET" && query == "":
		if err := imgspec.ValidName(name); err != nil {
			return nil, status(imgspec.BadRequest, "%v", err)
		}
		img, err := c.Call("img-storage", "get", []byte(name))
		if err != nil {
			return nil, err
		}
		ct := "image/jpeg"
		if bytes.HasPrefix(img, []byte("\x89PNG")) {
			ct = "image/png"
		}
		return response(200, ct, img), nil
	case method == "GET":
		v, err := imgspec.ParseQuery(name, query)
		if err != nil {
			return nil, status(imgspec.BadRequest, "%v", err)
		}
		img, err := c.Call("img-cache", "get", []byte(v.String()))
		if err != nil {
			return nil, err
		}
		return response(200, v.ContentType(), img), nil
	}
	return nil, status(405, "%s is not supported: use GET or PUT", method)
}

// parseEnvelope reads the gateway's request envelope: "METHOD TARGET\n",
// header lines, an empty line, the body.
func parseEnvelope(b []byte) (method, target string, body []byte, err error) {
	line, rest, ok := bytes.Cut(b, []byte("\n"))
	m, t, ok2 := strings.Cut(string(line), " ")
	if !ok || !ok2 {
		return "", "", nil, fmt.Errorf("malformed request envelope (route input must be \"request\")")
	}
	for {
		var h []byte
		h, rest, ok = bytes.Cut(rest, []byte("\n"))
		if !ok {
			return "", "", nil, fmt.Errorf("request envelope without the empty line after its headers")
		}
		if len(h) == 0 {
			return m, t, rest, nil
		}
	}
}

func response(code int, contentType string, body []byte) []byte {
	head := fmt.Sprintf("%d\nContent-Type: %s\n", code, contentType)
	if code == 200 {
		head += "Cache-Control: public, max-age=3600\n"
	}
	out := make([]byte, 0, len(head)+1+len(body))
	return append(append(append(out, head...), '\n'), body...)
}

// gallery lists the originals with a thumbnail of each and links to a few
// variants.
func gallery(c *tsubame.Seq) ([]byte, error) {
	idx, err := c.Call("img-storage", "list", nil)
	if err != nil {
		return nil, err
	}
	var b strings.Builder
	b.WriteString(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Tsubame images</title>
<style>
body{font-family:sans-serif;margin:1.5rem;background:#f6f6f4;color:#222}
h1{font-weight:600}
ul{list-style:none;padding:0;display:flex;flex-wrap:wrap;gap:1rem}
li{background:#fff;border:1px solid #ddd;border-radius:6px;padding:.7rem;width:250px}
img{display:block;width:240px;height:180px;object-fit:contain;background:#eee}
.meta{font-size:.85rem;color:#555;margin:.4rem 0}
a{color:#0b5394;margin-right:.6rem;font-size:.85rem}
</style></head><body>
<h1>Tsubame images</h1>
`)
	var items []string
	for _, line := range strings.Split(string(idx), "\n") {
		if strings.TrimSpace(line) != "" {
			items = append(items, line)
		}
	}
	fmt.Fprintf(&b, "<p>%d originals. Every picture below is a variant rendered on demand and cached.</p>\n<ul>\n", len(items))
	for _, line := range items {
		f := strings.Fields(line) // NAME FORMAT WxH BYTES
		if len(f) != 4 {
			continue
		}
		n := html.EscapeString(f[0])
		fmt.Fprintf(&b, `<li><img src="/img/%[1]s?w=240&amp;h=180&amp;fmt=jpeg" alt="%[1]s" width="240" height="180">
<div class="meta"><b>%[1]s</b> %[2]s %[3]s, %[4]s bytes</div>
<a href="/img/%[1]s">original</a><a href="/img/%[1]s?w=640&amp;fmt=jpeg">640 jpeg</a><a href="/img/%[1]s?w=320&amp;h=320&amp;fmt=png">320 png</a></li>
`, n, html.EscapeString(f[1]), html.EscapeString(f[2]), html.EscapeString(f[3]))
	}
	if len(items) == 0 {
		b.WriteString("<li>No images yet: <code>curl -T photo.jpg http://HOST/img/photo.jpg</code></li>\n")
	}
	b.WriteString("</ul>\n</body></html>\n")
	return response(200, "text/html; charset=utf-8", []byte(b.String())), nil
}

func main() {}
