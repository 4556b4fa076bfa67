package democluster

import (
	"bytes"
	"context"
	"image"
	"image/color"
	_ "image/jpeg"
	_ "image/png"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tsubame-rt/tsubame/internal/imgsamples"
)

// do sends one request to the cluster's gateway.
func do(t *testing.T, method, url string, body []byte) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, res.Header, b
}

// The image service on three nodes through the gateway: uploads (and a
// resent one), variants that miss and then hit, a miss whose steps run on
// all three nodes with the original read by reference on a node that did
// not make it, the gallery, and bad input answered with a 4xx naming the
// problem.
func TestImageService(t *testing.T) {
	if testing.Short() {
		t.Skip("compiles four Go components")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	d, err := Start(ctx, Config{Nodes: 3, HTTP: "127.0.0.1:0", App: ImagesApp(), Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)
	base := d.URL() + "/img/"
	samples := imgsamples.All()
	for _, s := range samples {
		code, _, body := do(t, "PUT", base+s.Name, s.Data)
		if code != 201 || !strings.Contains(string(body), "stored "+s.Name) {
			t.Fatalf("PUT %s: %d %s", s.Name, code, body)
		}
	}
	// A resent upload stores once and answers the same.
	large := samples[len(samples)-1]
	if code, _, body := do(t, "PUT", base+large.Name, large.Data); code != 201 || !strings.Contains(string(body), "stored "+large.Name) {
		t.Fatalf("PUT again: %d %s", code, body)
	}
	if code, _, body := do(t, "PUT", base+large.Name, samples[0].Data); code != 409 || !strings.Contains(string(body), "immutable") {
		t.Fatalf("PUT other bytes under a taken name: %d %s", code, body)
	}
	// The original comes back byte for byte.
	if code, hdr, body := do(t, "GET", base+large.Name, nil); code != 200 || !bytes.Equal(body, large.Data) || hdr.Get("Content-Type") != "image/jpeg" {
		t.Fatalf("GET original: %d %s, %d bytes", code, hdr.Get("Content-Type"), len(body))
	}

	fetchedBefore := d.Nodes[2].Blobs().Stats().FetchedBytes + d.Nodes[2].Blobs().Stats().TakenBytes
	for _, try := range []string{"miss", "hit"} {
		code, hdr, body := do(t, "GET", base+large.Name+"?w=256&fmt=png", nil)
		if code != 200 || hdr.Get("Content-Type") != "image/png" {
			t.Fatalf("GET variant (%s): %d %s %.200s", try, code, hdr.Get("Content-Type"), body)
		}
		cfg, format, err := image.DecodeConfig(bytes.NewReader(body))
		if err != nil || format != "png" || cfg.Width != 256 || cfg.Height != 192 {
			t.Fatalf("variant (%s): %v %s %dx%d, want a 256x192 png", try, err, format, cfg.Width, cfg.Height)
		}
		trace := strings.Fields(hdr.Get("Tsubame-Trace"))
		nodes := map[string]bool{}
		for _, n := range trace {
			nodes[n] = true
		}
		switch try {
		case "miss":
			// front (node-1) -> cache (node-2) -> convert (node-3) -> storage (node-1) -> ...
			if len(nodes) != 3 {
				t.Errorf("miss ran on %v, want all three nodes", trace)
			}
		case "hit":
			if len(trace) != 3 || nodes["node-3"] {
				t.Errorf("hit ran %v, want front, cache, front without convert", trace)
			}
		}
	}
	// node-3 (convert) read the 1 MiB original, made on node-1 (storage): it
	// came with the LP, once.
	st := d.Nodes[2].Blobs().Stats()
	if got := st.FetchedBytes + st.TakenBytes - fetchedBefore; got < int64(len(large.Data)) || got > int64(len(large.Data))*11/10 {
		t.Errorf("node-3 received %d blob bytes for one miss, want the original's %d once", got, len(large.Data))
	}

	code, hdr, body := do(t, "GET", base, nil)
	if code != 200 || !strings.HasPrefix(hdr.Get("Content-Type"), "text/html") {
		t.Fatalf("gallery: %d %s", code, hdr.Get("Content-Type"))
	}
	for _, s := range samples {
		if !strings.Contains(string(body), `src="/img/`+s.Name+`?w=240&amp;h=180&amp;fmt=jpeg"`) {
			t.Errorf("gallery lacks a thumbnail of %s", s.Name)
		}
	}

	// Every thumbnail the gallery shows renders (and is cached before
	// Chromium asks: a conversion takes seconds on a loaded machine).
	for _, s := range samples {
		if code, _, body := do(t, "GET", base+s.Name+"?w=240&h=180&fmt=jpeg", nil); code != 200 {
			t.Fatalf("thumbnail of %s: %d %.300s", s.Name, code, body)
		}
	}
	galleryInChromium(t, base)

	for _, tc := range []struct {
		method, path string
		body         []byte
		code         int
		msg          string
	}{
		{"GET", "nothere.png?w=10", nil, 404, `no image named "nothere.png"`},
		{"GET", large.Name + "?w=100000", nil, 400, "w=\"100000\": want a whole number of pixels from 1 to 4096"},
		{"GET", large.Name + "?w=0", nil, 400, "from 1 to 4096"},
		{"GET", large.Name + "?fmt=gif&w=10", nil, 400, "fmt=\"gif\": want png or jpeg"},
		{"GET", large.Name + "?size=10", nil, 400, "unknown parameter"},
		{"GET", large.Name + "?fmt=png", nil, 400, "give w or h"},
		{"GET", "bad%20name?w=10", nil, 400, "may hold only letters"},
		{"PUT", "notes.txt", []byte("plain text, not an image"), 415, "not a PNG or JPEG image"},
		{"PUT", "empty.png", nil, 400, "the upload is empty"},
		{"PUT", "huge.jpg", bytes.Repeat([]byte{0xff}, 1<<20+1), 413, "over the limit of 1048576"},
	} {
		code, _, body := do(t, tc.method, base+tc.path, tc.body)
		if code != tc.code || !strings.Contains(string(body), tc.msg) {
			t.Errorf("%s %s: %d %q, want %d mentioning %q", tc.method, tc.path, code, body, tc.code, tc.msg)
		}
	}
}

// galleryInChromium renders the gallery in headless Chromium and checks
// that the thumbnails were drawn: broken images would leave a page of text
// on a flat background, with few colours. TSUBAME_GALLERY_PNG=FILE keeps
// the screenshot (docs/images-gallery.png is one).
func galleryInChromium(t *testing.T, url string) {
	t.Helper()
	bin, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("TSUBAME_REQUIRE_TOOLCHAINS") == "1" {
			t.Fatal("chromium is not installed (scripts/install-chromium.sh)")
		}
		t.Log("chromium not installed: gallery not rendered")
		return
	}
	dir := t.TempDir()
	shot := filepath.Join(dir, "gallery.png")
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
		"--user-data-dir="+filepath.Join(dir, "profile"), "--window-size=1240,480",
		"--virtual-time-budget=20000", "--screenshot="+shot, url)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("chromium: %v\n%s", err, out)
	}
	b, err := os.ReadFile(shot)
	if err != nil {
		t.Fatal(err)
	}
	img, _, err := image.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	colours := map[color.RGBA]bool{}
	bounds := img.Bounds()
	for y := bounds.Min.Y; y < bounds.Max.Y; y += 2 {
		for x := bounds.Min.X; x < bounds.Max.X; x += 2 {
			r, g, b, _ := img.At(x, y).RGBA()
			colours[color.RGBA{uint8(r >> 8), uint8(g >> 8), uint8(b >> 8), 255}] = true
		}
	}
	if len(colours) < 2000 {
		t.Errorf("the gallery rendered with %d colours: its thumbnails did not load", len(colours))
	}
	if keep := os.Getenv("TSUBAME_GALLERY_PNG"); keep != "" {
		if err := os.WriteFile(keep, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
