package democluster

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tsubame-rt/tsubame"
	"github.com/tsubame-rt/tsubame/gateway"
)

func startDemo(t *testing.T, c Config) *Cluster {
	t.Helper()
	c.HTTP = "127.0.0.1:0"
	d, err := Start(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)
	return d
}

// get fetches path and returns the status, body and Tsubame-Trace header.
func get(t *testing.T, d *Cluster, path string) (int, string, string) {
	t.Helper()
	res, err := http.Get(d.URL() + path)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, string(b), res.Header.Get("Tsubame-Trace")
}

// healthCount reads one counter from the gateway's /healthz.
func healthCount(t *testing.T, d *Cluster, name string) string {
	t.Helper()
	_, body, _ := get(t, d, "/healthz")
	for _, line := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			return v
		}
	}
	t.Fatalf("/healthz has no %s line:\n%s", name, body)
	return ""
}

// A node with the gateway embedded runs a request whose components it holds
// start to finish itself: every step on node-1, no hop. A trapping component
// run on the request's own goroutine fails its LP only: the client gets the
// failure, and the node keeps serving.
func TestEmbeddedRunsHere(t *testing.T) {
	trap, err := os.ReadFile(filepath.Join("..", "..", "testdata", "trap.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	app := &App{
		Modules:   map[string][]byte{"hello": tsubame.DemoHello, "greet": tsubame.DemoGreet, "trap": trap},
		Placement: func(int, int) []string { return []string{"hello", "greet", "trap"} },
		Routes:    []gateway.Route{Route, {Method: "GET", Path: "/trap", Component: "trap", Kind: "run"}},
	}
	d := startDemo(t, Config{Nodes: 1, App: app, Embed: true})
	status, body, trace := get(t, d, "/hello?name=world")
	if status != http.StatusOK || body != "Hello, world!" {
		t.Fatalf("GET /hello: %d %q", status, body)
	}
	if trace != "node-1 node-1 node-1" {
		t.Fatalf("Tsubame-Trace %q, want every step on node-1", trace)
	}
	if got := healthCount(t, d, "run_here"); got != "1" {
		t.Fatalf("run_here %s, want 1", got)
	}
	if got := healthCount(t, d, "nodes"); got != "1" {
		t.Fatalf("nodes %s, want 1 (the node the gateway is embedded in)", got)
	}
	for range 3 {
		status, body, _ := get(t, d, "/trap")
		if status < 500 || !strings.Contains(body, "trap") {
			t.Fatalf("GET /trap: %d %q, want a 5xx naming the trap", status, body)
		}
		status, body, _ = get(t, d, "/hello?name=after")
		if status != http.StatusOK || body != "Hello, after!" {
			t.Fatalf("GET /hello after a trap: %d %q", status, body)
		}
	}
}

// Under the spread placement the embedded gateway's request still migrates:
// greet is only on node-2, and the reply comes home to node-1.
func TestEmbeddedMigratesWhenPlacementSays(t *testing.T) {
	d := startDemo(t, Config{Nodes: 2, Embed: true})
	status, body, trace := get(t, d, "/hello?name=swallow")
	if status != http.StatusOK || body != "Hello, swallow!" {
		t.Fatalf("GET /hello: %d %q", status, body)
	}
	if trace != "node-1 node-2 node-1" {
		t.Fatalf("Tsubame-Trace %q, want node-1 node-2 node-1", trace)
	}
}

// The standalone gateway keeps working: every request crosses to a node.
func TestStandaloneGateway(t *testing.T) {
	d := startDemo(t, Config{Nodes: 1})
	status, body, trace := get(t, d, "/hello?name=world")
	if status != http.StatusOK || body != "Hello, world!" || trace != "node-1 node-1 node-1" {
		t.Fatalf("GET /hello: %d %q trace %q", status, body, trace)
	}
	if got := healthCount(t, d, "run_here"); got != "0" {
		t.Fatalf("run_here %s in a standalone gateway", got)
	}
}

// An embedded gateway takes the cluster keys from its node.
func TestEmbeddedRejectsNodeKeys(t *testing.T) {
	gc := gateway.DefaultConfig()
	gc.Routes = []gateway.Route{Route}
	gc.Seeds = []string{"127.0.0.1:1"}
	_, err := gateway.Embed(gc, nil, gateway.Options{})
	if err == nil || !strings.Contains(err.Error(), "seeds") {
		t.Fatalf("err = %v, want one naming seeds", err)
	}
}
