//go:build unix

package e2e

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tsubame-rt/tsubame/internal/obs"
)

// chromium finds the headless browser (Debian's chromium, which
// scripts/install-test-tools.sh installs under CI=true). Without it the
// test skips, unless TSUBAME_REQUIRE_CHROMIUM=1 (CI) makes that a failure.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("TSUBAME_REQUIRE_CHROMIUM") == "1" {
		t.Fatal("chromium is not installed (scripts/install-test-tools.sh installs it)")
	}
	t.Skip("chromium is not installed")
	return ""
}

// startDemo runs `tsubame demo` on a free port and returns the gateway's
// URL once it prints its dashboard line.
func startDemo(t *testing.T, bin string) string {
	t.Helper()
	cmd := exec.Command(bin, "demo", "--nodes", "3", "--http", "127.0.0.1:0")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	logf, err := os.Create(filepath.Join(t.TempDir(), "demo.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = logf
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
		logf.Close()
	})
	urls := make(chan string, 1)
	go func() {
		defer close(urls)
		sc := bufio.NewScanner(stdout)
		re := regexp.MustCompile(`^Dashboard: (http://\S+)/ui/$`)
		for sc.Scan() {
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				urls <- m[1]
				break
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case u, ok := <-urls:
		if !ok {
			t.Fatal("tsubame demo exited without printing its dashboard URL")
		}
		return u
	case <-time.After(90 * time.Second):
		t.Fatal("tsubame demo printed no dashboard URL within 90s")
	}
	return ""
}

// TestDashboard drives headless Chromium against a running demo cluster:
// the page must show live data (every node with its components, the route
// with its counters, recent journeys) and open a journey's steps. It also
// checks `tsubame trace` prints the same journey and the gateway's /metrics.
func TestDashboard(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a demo cluster and a browser")
	}
	browser := chromium(t)
	bin := binary(t)
	base := startDemo(t, bin)
	client := &http.Client{Timeout: 10 * time.Second}

	var id string
	for i := range 20 {
		resp, err := client.Get(base + "/hello?name=ui" + string(rune('a'+i)))
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET /hello: %s", resp.Status)
		}
		id = resp.Header.Get("Tsubame-Lp")
	}
	if len(id) != 32 {
		t.Fatalf("Tsubame-Lp header %q, want a 32-digit LP ID", id)
	}

	out := tsubame(t, bin, "trace", "--from", base, id)
	for _, want := range []string{"LP " + id, "GET /hello -> hello/say", "greet/greet", "moved: not-held", "moved: return"} {
		if !strings.Contains(out, want) {
			t.Fatalf("tsubame trace output lacks %q:\n%s", want, out)
		}
	}
	if out := tsubame(t, bin, "trace", "--from", base, "--recent", "-n", "5"); !strings.Contains(out, id[:12]) {
		t.Fatalf("tsubame trace --recent lacks %s:\n%s", id[:12], out)
	}
	// The cluster's /metrics, read with the Prometheus client's own parser.
	fams, err := obs.Scrape(client, base+"/metrics")
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := obs.Value(fams, "tsubame_http_requests_total", map[string]string{"route": "GET /hello", "code": "200"}); v != 20 {
		t.Fatalf("tsubame_http_requests_total{route=\"GET /hello\",code=\"200\"} = %v, want 20", v)
	}
	if v, _ := obs.Value(fams, "tsubame_steps_total", map[string]string{"component": "greet", "outcome": "reply"}); v < 20 {
		t.Fatalf("tsubame_steps_total{component=\"greet\",outcome=\"reply\"} = %v, want at least 20", v)
	}

	// Keep traffic flowing while the page polls, so rates and migrations
	// are live; bounded in count and time.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < 2000 && ctx.Err() == nil; i++ {
			if _, _, err := get(client, base+"/hello?name=load"); err != nil {
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	defer wg.Wait()
	defer cancel()

	args := []string{"--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--user-data-dir=" + t.TempDir(),
		"--window-size=1280,1000", "--virtual-time-budget=3000"}
	// Each run starts a browser: about 15s on a loaded 2-core machine.
	run := func(extra ...string) ([]byte, error) {
		cctx, ccancel := context.WithTimeout(ctx, 90*time.Second)
		defer ccancel()
		return exec.CommandContext(cctx, browser, append(slices.Clone(args), extra...)...).Output()
	}
	if shot := os.Getenv("TSUBAME_SCREENSHOT"); shot != "" {
		if _, err := run("--hide-scrollbars", "--screenshot="+shot, base+"/ui/#j="+id); err != nil {
			t.Fatalf("chromium --screenshot: %v", err)
		}
	}
	var dom string
	poll(t, 2*time.Minute, func() string {
		// A fresh LP each time: under this traffic the gateway's ring of
		// recent journeys turns over within a browser's start-up.
		resp, err := client.Get(base + "/hello?name=open")
		if err != nil {
			return err.Error()
		}
		resp.Body.Close()
		id = resp.Header.Get("Tsubame-Lp")
		b, err := run("--dump-dom", base+"/ui/#j="+id)
		if err != nil {
			return "chromium --dump-dom: " + err.Error()
		}
		dom = string(b)
		for _, want := range []string{
			`data-node="node-1"`, `data-node="node-2"`, `data-node="node-3"`, // node cards from live state
			`data-component="greet"`, `data-route="GET /hello"`, // components and route counters
			`data-member="node-1"`,                // the topology drawing
			`data-lp="` + id + `"`,                // the journey list and the open journey
			`class="step-row" data-node="node-2"`, // the journey's steps
			"moved: not-held",
		} {
			if !strings.Contains(dom, want) {
				return "the page lacks " + want
			}
		}
		if regexp.MustCompile(`<section id="journey-panel"[^>]*hidden`).MatchString(dom) {
			return "the journey panel is still hidden"
		}
		return ""
	})
}
