package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tsubame-rt/tsubame/internal/mesh/pki"
	"github.com/tsubame-rt/tsubame/node"
)

func TestNodeBadConfig(t *testing.T) {
	p := filepath.Join(t.TempDir(), "node.toml")
	if err := os.WriteFile(p, []byte("workers = 2\nlisen = \"127.0.0.1:0\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	if code := run([]string{"node", "--config", p}, &out, &errb); code != 1 {
		t.Fatalf("exit %d, want 1; stderr %s", code, errb.String())
	}
	if want := p + ":2: lisen: unknown key"; !strings.Contains(errb.String(), want) {
		t.Errorf("stderr %q does not contain %q", errb.String(), want)
	}
	if code := run([]string{"node"}, &out, &errb); code != 2 {
		t.Errorf("no --config: exit %d, want 2", code)
	}
}

// Every file the config names that is missing is reported in one go.
func TestNodeMissingFiles(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "node.toml")
	cfg := "admin_token_file = \"admin.token\"\n[components]\necho = \"echo.wasm\"\n[tls]\nca = \"ca.pem\"\ncert = \"n.pem\"\nkey = \"n-key.pem\"\n"
	if err := os.WriteFile(p, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	if code := run([]string{"node", "--config", p}, &out, &errb); code != 1 {
		t.Fatalf("exit %d, want 1; stderr %s", code, errb.String())
	}
	for _, want := range []string{p + ":1: admin_token_file: ", p + ":3: components.echo: ", p + ":5: tls.ca: ", p + ":6: tls.cert: ", p + ":7: tls.key: "} {
		if !strings.Contains(errb.String(), want) {
			t.Errorf("stderr does not contain %q:\n%s", want, errb.String())
		}
	}
}

// tsubame status renders a running node's /v1/status.
func TestStatusTable(t *testing.T) {
	ca, err := pki.NewCA("test")
	if err != nil {
		t.Fatal(err)
	}
	tlsConf, err := ca.IssueTLS("alpha")
	if err != nil {
		t.Fatal(err)
	}
	echo, err := os.ReadFile("../../testdata/echo.wasm")
	if err != nil {
		t.Fatal(err)
	}
	c := node.DefaultConfig()
	c.Listen, c.Gossip, c.Admin, c.Workers = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0", 3
	n, err := node.New(context.Background(), c, node.Options{TLS: tlsConf, Modules: map[string][]byte{"echo": echo},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = n.Shutdown(ctx)
	})
	var out, errb bytes.Buffer
	if code := run([]string{"status", "--admin", n.AdminAddr()}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	lines := strings.Split(out.String(), "\n")
	if len(lines) < 2 || !strings.HasPrefix(lines[0], "NODE") {
		t.Fatalf("no table:\n%s", out.String())
	}
	if f := strings.Fields(lines[1]); len(f) < 7 || f[0] != "alpha" || f[1] != "*" || f[2] != "node" || f[3] != "echo" || f[6] != "3" {
		t.Errorf("row %q, want alpha * node echo ... 3 workers", lines[1])
	}
	out.Reset()
	if code := run([]string{"status", "--admin", n.AdminAddr(), "--json"}, &out, &errb); code != 0 || !strings.Contains(out.String(), `"name": "alpha"`) {
		t.Errorf("--json: exit %d, %s", code, out.String())
	}
	// The admin API's HTTPS side, checked against the cluster CA, as every
	// admin command is; --wait --members returns once the node sees itself.
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, ca.CertPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if code := run([]string{"status", "--admin", n.AdminAddr(), "--ca", caFile, "--wait", "30s", "--members", "1"}, &out, &errb); code != 0 || !strings.Contains(out.String(), "alpha *") {
		t.Errorf("status over HTTPS: exit %d, %s %s", code, out.String(), errb.String())
	}
	if code := run([]string{"status", "--admin", "127.0.0.1:1", "--timeout", "2s"}, &out, &errb); code != 1 {
		t.Errorf("status of nothing: exit %d, want 1", code)
	}
}
