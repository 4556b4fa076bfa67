package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tsubame-rt/tsubame/gateway"
	"github.com/tsubame-rt/tsubame/internal/adminapi"
	"github.com/tsubame-rt/tsubame/internal/mesh/pki"
	"github.com/tsubame-rt/tsubame/node"
)

const cliToken = "0123456789abcdef0123456789abcdef"

// padded returns module with a custom section that makes it size bytes: a
// valid module as large as a real one, cheap to compile.
func padded(t *testing.T, module []byte, size int) []byte {
	t.Helper()
	name := "padding"
	n := size - len(module) - 1 - binary.MaxVarintLen32 - 1 - len(name)
	content := append([]byte{byte(len(name))}, name...)
	content = append(content, make([]byte, n)...)
	out := append(append([]byte(nil), module...), 0) // custom section id
	out = binary.AppendUvarint(out, uint64(len(content)))
	return append(out, content...)
}

// cliCluster is one node and one gateway in this process, with admin APIs
// on, and the files the CLI reads: ca.pem and the token.
type cliCluster struct {
	dir, ca, token string
	node           *node.Node
	gw             *gateway.Gateway
}

func startCLICluster(t *testing.T) *cliCluster {
	t.Helper()
	dir := t.TempDir()
	cc := &cliCluster{dir: dir, ca: filepath.Join(dir, "ca.pem"), token: filepath.Join(dir, "token")}
	ca, err := pki.NewCA("test")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cc.ca, ca.CertPEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cc.token, []byte(cliToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	nodeTLS, err := ca.IssueTLS("alpha")
	if err != nil {
		t.Fatal(err)
	}
	c := node.DefaultConfig()
	c.Listen, c.Gossip, c.Admin, c.Workers = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0", 2
	c.DataDir, c.AdminTokenFile = filepath.Join(dir, "data"), cc.token
	c.Modules.MaxBytes = 4 << 20
	if cc.node, err = node.New(context.Background(), c, node.Options{TLS: nodeTLS, Logger: quiet}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = cc.node.Shutdown(ctx)
	})
	gwTLS, err := ca.IssueTLS("gw")
	if err != nil {
		t.Fatal(err)
	}
	gc := gateway.DefaultConfig()
	gc.Name, gc.Seeds = "gw", []string{cc.node.GossipAddr()}
	gc.HTTP.Listen = "127.0.0.1:0"
	gc.Admin = gateway.AdminConfig{Listen: "127.0.0.1:0", TokenFile: cc.token}
	if cc.gw, err = gateway.New(context.Background(), gc, gateway.Options{ClusterTLS: gwTLS, Logger: quiet}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = cc.gw.Shutdown(ctx)
	})
	return cc
}

// cli runs the tsubame command and returns its exit code, stdout and stderr.
func cli(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestInstallRemoveComponents(t *testing.T) {
	cc := startCLICluster(t)
	echo, err := os.ReadFile("../../testdata/echo.wasm")
	if err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(cc.dir, "big.wasm")
	if err := os.WriteFile(big, padded(t, echo, 3<<19), 0o644); err != nil { // 1.5 MiB
		t.Fatal(err)
	}
	admin := []string{"--admin", cc.node.AdminAddr(), "--token-file", cc.token, "--ca", cc.ca}

	// Flags may follow the arguments, as in the issue's synopsis.
	code, out, errs := cli(append(append([]string{"install"}, admin...), "echo2", big, "--all")...)
	if code != 0 || !strings.Contains(out, "installed echo2") || !strings.Contains(out, "on 1 of 1 nodes") {
		t.Fatalf("install: exit %d\n%s%s", code, out, errs)
	}
	if !strings.Contains(errs, "uploading big.wasm: 1.5 MiB of 1.5 MiB (100%)") || !strings.Contains(errs, "(50%)") {
		t.Errorf("no upload progress on stderr:\n%s", errs)
	}
	if cs := cc.node.Components(); len(cs) != 1 || cs[0].Name != "echo2" {
		t.Fatalf("node holds %v", cs)
	}

	code, out, errs = cli(append([]string{"components"}, admin...)...)
	if code != 0 || !strings.Contains(out, "echo2") || !strings.Contains(out, "upload") || !strings.Contains(out, "1.5 MiB") {
		t.Errorf("components: exit %d\n%s%s", code, out, errs)
	}

	wrong := filepath.Join(cc.dir, "wrong")
	if err := os.WriteFile(wrong, []byte("not-the-token-0123456789"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"install", "--admin", cc.node.AdminAddr(), "--token-file", wrong, "--ca", cc.ca, "x", big}, "401"},
		{append(append([]string{"install"}, admin...), "x", cc.token), "(compile)"},
		{append(append([]string{"install"}, admin...), "x", "../../testdata/badimport.wasm"), "imports"},
		{[]string{"install", "--admin", cc.node.AdminAddr(), "--token-file", cc.token, "x", big}, "pass --ca"},
		{append(append([]string{"remove"}, admin...), "absent"), "none of the nodes holds absent"},
	} {
		code, out, errs := cli(tc.args...)
		if code != 1 || !strings.Contains(errs, tc.want) {
			t.Errorf("%v: exit %d, want 1 with %q on stderr\n%s%s", tc.args, code, tc.want, out, errs)
		}
	}
	if code, _, errs := cli("install", "--admin", cc.node.AdminAddr(), "x", big); code != 2 || !strings.Contains(errs, "--token-file") {
		t.Errorf("no token: exit %d %s", code, errs)
	}
	if code, _, errs := cli("install", "--admin", cc.node.AdminAddr(), "--token-file", cc.ca, "x", big); code != 2 || !strings.Contains(errs, "not a token") {
		t.Errorf("a PEM file as the token: exit %d %s", code, errs)
	}

	code, out, errs = cli(append(append([]string{"remove"}, admin...), "echo2")...)
	if code != 0 || !strings.Contains(out, "removed echo2 on 1 of 1 nodes") || len(cc.node.Components()) != 0 {
		t.Errorf("remove: exit %d\n%s%s", code, out, errs)
	}
}

func TestRouteAndCall(t *testing.T) {
	cc := startCLICluster(t)
	gw := []string{"--gateway", cc.gw.AdminAddr(), "--token-file", cc.token, "--ca", cc.ca}
	admin := []string{"--admin", cc.node.AdminAddr(), "--token-file", cc.token, "--ca", cc.ca}
	if code, out, errs := cli(append(append([]string{"install"}, admin...), "echo", "../../testdata/echo.wasm")...); code != 0 {
		t.Fatalf("install: %d\n%s%s", code, out, errs)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, out, errs := cli(append(append([]string{"call"}, gw...), "echo", "get", "hello there")...)
		if code == 0 {
			if out != "hello there" {
				t.Fatalf("call: %q", out)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("call never succeeded: %d %s%s", code, out, errs)
		}
		time.Sleep(20 * time.Millisecond)
	}
	code, _, errs := cli(append(append([]string{"call", "-v"}, gw...), "echo", "get", "x")...)
	if code != 0 || !strings.Contains(errs, "trace: alpha") {
		t.Errorf("call -v: %d %s", code, errs)
	}
	if code, _, errs := cli(append(append([]string{"call"}, gw...), "nothing", "get")...); code != 1 || !strings.Contains(errs, "503") {
		t.Errorf("call of a component nobody holds: %d %s", code, errs)
	}

	code, out, errs := cli(append(append([]string{"route", "add"}, gw...), "--method", "POST", "--input", "body", "/echo", "echo", "get")...)
	if code != 0 || !strings.Contains(out, "/echo") || !strings.Contains(out, "admin") {
		t.Fatalf("route add: %d\n%s%s", code, out, errs)
	}
	if code, out, _ := cli(append([]string{"route", "ls"}, gw...)...); code != 0 || !strings.Contains(out, "POST    /echo  echo") {
		t.Errorf("route ls:\n%s", out)
	}
	if code, _, errs := cli(append(append([]string{"route", "add"}, gw...), "--method", "POST", "/echo", "echo", "get")...); code != 1 || !strings.Contains(errs, "409") {
		t.Errorf("duplicate route: %d %s", code, errs)
	}
	if code, out, errs := cli(append(append([]string{"route", "rm"}, gw...), "--method", "POST", "/echo")...); code != 0 || strings.Contains(out, "/echo") {
		t.Errorf("route rm: %d\n%s%s", code, out, errs)
	}
}

// tsubame status marks auto-installed components with their time and lists
// the answering node's auto-grow actions.
func TestStatusShowsAutogrow(t *testing.T) {
	at := time.Date(2026, 5, 4, 10, 14, 40, 0, time.Local)
	st := adminapi.Status{Node: "n1", Time: at, Members: []adminapi.MemberStatus{
		{Name: "n1", Self: true, Components: []adminapi.ComponentStatus{{Name: "slow", Source: "config"}}},
		{Name: "n2", Fresh: true, Components: []adminapi.ComponentStatus{{Name: "slow", Source: "auto", Auto: true, InstalledAt: &at}}},
	}, Autogrow: []adminapi.AutogrowEvent{{Action: "install", Component: "slow", Node: "n2", At: at, Millis: 31}}}
	var b bytes.Buffer
	printStatus(&b, st)
	out := b.String()
	for _, want := range []string{"slow(auto 10:14:40)", "auto-grow actions of n1:", "2026-05-04 10:14:40  install slow on n2 (31 ms)"} {
		if !strings.Contains(out, want) {
			t.Errorf("status output lacks %q:\n%s", want, out)
		}
	}
}
