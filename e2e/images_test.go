//go:build unix

package e2e

import (
	"bytes"
	"fmt"
	"image"
	_ "image/png"
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tsubame-rt/tsubame/internal/imgsamples"
	"github.com/tsubame-rt/tsubame/internal/testutil"
)

// TestImagesAcrossProcesses runs the image service (docs/images.md) on four
// node processes sharing a Redis, behind a gateway process: node-1 holds
// img-front and img-cache, node-2 img-storage, node-3 and node-4
// img-convert. An upload and its resend store once; a GET that misses runs
// on three nodes, its 1 MiB original made on node-2 and read by reference on
// a convert node; a hit answers the same bytes. Then several misses run at
// once and node-3, which holds the original of whatever it is converting,
// is SIGKILLed in the middle: every request either gets the right image
// (resent by the gateway to node-4) or fails cleanly, never a wrong image.
func TestImagesAcrossProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("starts five processes and a redis-server")
	}
	redis := testutil.StartRedis(t)
	bin := binary(t)
	dir := t.TempDir()
	certs := filepath.Join(dir, "certs")
	tsubame(t, bin, "ca", "init", "--dir", certs)
	for _, name := range []string{"node-1", "node-2", "node-3", "node-4", "gateway"} {
		tsubame(t, bin, "ca", "issue", "--dir", certs, name)
	}
	mod := func(name string) string { p, _ := filepath.Abs("../testdata/" + name + ".wasm"); return p }
	extra := fmt.Sprintf(`
[limits]
step_timeout = "30s"
[kv]
default_backend = "shared"
[kv.backends.shared]
type = "redis"
url = %q
timeout = "2s"
`, redis.URL())
	n1 := start(t, bin, dir, "node-1", "node", nodeConfig("node-1", certs, "",
		map[string]string{"img-front": mod("img-front"), "img-cache": mod("img-cache")})+extra)
	seed := n1.field(t, "gossip")
	procs := map[string]*proc{"node-1": n1}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for name, comps := range map[string]map[string]string{
		"node-2": {"img-storage": mod("img-storage")},
		"node-3": {"img-convert": mod("img-convert")},
		"node-4": {"img-convert": mod("img-convert")},
	} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := start(t, bin, dir, name, "node", nodeConfig(name, certs, seed, comps)+extra)
			mu.Lock()
			procs[name] = p
			mu.Unlock()
		}()
	}
	wg.Wait()
	if len(procs) != 4 {
		t.FailNow()
	}
	route := func(method, path string) string {
		return fmt.Sprintf("\n[[route]]\nmethod = %q\npath = %q\ncomponent = \"img-front\"\nkind = \"http\"\ninput = \"request\"\noutput = \"response\"\n", method, path)
	}
	gw := start(t, bin, dir, "gateway", "gateway", gatewayConfig(certs, seed)+`expose_trace = true
max_body_bytes = 2097152
[dispatch]
attempts = 3
attempt_timeout = "25s"
`+
		route("PUT", "/img/{name}")+route("GET", "/img/{name}")+route("GET", "/img/{$}"))
	base := regexp.MustCompile(`https?://\S+`).FindString(gw.line)
	client := &http.Client{Timeout: 3 * time.Minute}
	poll(t, 30*time.Second, func() string {
		code, body, err := get(client, base+"/healthz")
		if err != nil || code != 200 || !regexp.MustCompile(`\nnodes 4\n`).MatchString(body) {
			return fmt.Sprintf("healthz: %d %q %v", code, body, err)
		}
		for _, n := range procs {
			if seen := freshPeers(client, n.field(t, "admin")); seen != 3 {
				return fmt.Sprintf("%s sees %d fresh nodes", n.name, seen)
			}
		}
		return ""
	})
	do := func(method, url string, body []byte) (int, http.Header, []byte) {
		req, _ := http.NewRequest(method, url, bytes.NewReader(body))
		res, err := client.Do(req)
		if err != nil {
			return 0, nil, []byte(err.Error())
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, res.Header, b
	}

	large := imgsamples.Large()
	for range 2 { // the second is a resent upload: stored once, same answer
		if code, _, body := do("PUT", base+"/img/large.jpg", large); code != 201 || !strings.Contains(string(body), "stored large.jpg") {
			t.Fatalf("PUT: %d %s", code, body)
		}
	}
	var miss []byte
	for _, try := range []string{"miss", "hit"} {
		code, hdr, body := do("GET", base+"/img/large.jpg?w=200&fmt=png", nil)
		if code != 200 {
			t.Fatalf("GET (%s): %d %s", try, code, body)
		}
		if cfg, _, err := image.DecodeConfig(bytes.NewReader(body)); err != nil || cfg.Width != 200 || cfg.Height != 150 {
			t.Fatalf("GET (%s): %v %dx%d, want a 200x150 png", try, err, cfg.Width, cfg.Height)
		}
		nodes := map[string]bool{}
		for _, n := range strings.Fields(hdr.Get("Tsubame-Trace")) {
			nodes[n] = true
		}
		switch try {
		case "miss":
			miss = body
			if len(nodes) != 3 || !nodes["node-2"] {
				t.Errorf("the miss ran on %q, want node-1, node-2 and a convert node", hdr.Get("Tsubame-Trace"))
			}
		case "hit":
			if !bytes.Equal(body, miss) || len(nodes) != 1 {
				t.Errorf("the hit ran on %q and answered %d bytes, want node-1 only and the miss's bytes", hdr.Get("Tsubame-Trace"), len(body))
			}
		}
	}

	// Several misses at once; node-3 dies in the middle of converting.
	type answer struct {
		w, code int
		body    []byte
		attempt string
	}
	answers := make(chan answer, 8)
	for i := range 8 {
		go func() {
			w := 100 + 10*i
			code, hdr, body := do("GET", fmt.Sprintf("%s/img/large.jpg?w=%d&fmt=png", base, w), nil)
			answers <- answer{w, code, body, hdr.Get("Tsubame-Attempt")}
		}()
	}
	time.Sleep(500 * time.Millisecond)
	_ = syscall.Kill(-procs["node-3"].cmd.Process.Pid, syscall.SIGKILL)
	resent := 0
	for range 8 {
		a := <-answers
		switch {
		case a.code == 200:
			cfg, _, err := image.DecodeConfig(bytes.NewReader(a.body))
			if err != nil || cfg.Width != a.w || cfg.Height != int(float64(a.w)*0.75+0.5) {
				t.Errorf("w=%d answered a wrong image: %v %dx%d", a.w, err, cfg.Width, cfg.Height)
			}
			if a.attempt != "0" {
				resent++
			}
		case a.code >= 500:
			t.Logf("w=%d failed cleanly: %d %s", a.w, a.code, a.body)
		default:
			t.Errorf("w=%d: %d %s", a.w, a.code, a.body)
		}
	}
	t.Logf("%d of 8 misses were answered by a resend after node-3 died", resent)
}
