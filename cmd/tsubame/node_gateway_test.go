package main

import (
	"bytes"
	"context"
	"github.com/tsubame-rt/tsubame/internal/obs"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/tsubame-rt/tsubame/internal/mesh/pki"
)

// `tsubame node` with a [gateway] section serves HTTP itself: one process,
// one file, and a request whose components the node holds runs there.
func TestNodeWithGatewaySection(t *testing.T) {
	dir := t.TempDir()
	ca, err := pki.NewCA("test")
	if err != nil {
		t.Fatal(err)
	}
	if err := ca.Save(filepath.Join(dir, "certs")); err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, err := ca.Issue("edge-1", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{"certs/edge-1.pem": certPEM, "certs/edge-1-key.pem": keyPEM}
	for _, m := range []string{"hello", "greet"} {
		if files[m+".wasm"], err = os.ReadFile("../../testdata/" + m + ".wasm"); err != nil {
			t.Fatal(err)
		}
	}
	files["node.toml"] = []byte(`listen = "127.0.0.1:0"
gossip = "127.0.0.1:0"
admin = "off"
[components]
hello = "hello.wasm"
greet = "greet.wasm"
[tls]
ca = "certs/ca.pem"
cert = "certs/edge-1.pem"
key = "certs/edge-1-key.pem"

[gateway.http]
listen = "127.0.0.1:0"
expose_trace = true
[[gateway.route]]
method = "GET"
path = "/hello"
component = "hello"
kind = "say"
input = "query:name"
`)
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	var out bytes.Buffer
	srv, _, err := startNode(context.Background(), filepath.Join(dir, "node.toml"), func(obs.LogConfig) (*slog.Logger, error) { return slog.New(slog.DiscardHandler), nil }, &out)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	m := regexp.MustCompile(`gateway (http://127\.0\.0\.1:\d+) `).FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("no gateway address in %q", out.String())
	}
	res, err := http.Get(m[1] + "/hello?name=edge")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || string(body) != "Hello, edge!" || res.Header.Get("Tsubame-Trace") != "edge-1 edge-1 edge-1" {
		t.Fatalf("GET /hello: %d %q trace %q", res.StatusCode, body, res.Header.Get("Tsubame-Trace"))
	}
}
