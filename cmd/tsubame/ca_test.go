package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tsubame-rt/tsubame/internal/mesh/pki"
)

func runCmd(args ...string) (code int, stdout, stderr string) {
	var o, e bytes.Buffer
	code = run(args, &o, &e)
	return code, o.String(), e.String()
}

func TestCAInitIssue(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "certs")
	if code, _, stderr := runCmd("ca", "init", "--dir", dir); code != 0 {
		t.Fatalf("ca init: exit %d: %s", code, stderr)
	}
	if code, _, stderr := runCmd("ca", "init", "--dir", dir); code != 1 || !strings.Contains(stderr, "already exists") {
		t.Fatalf("second ca init: exit %d: %s", code, stderr)
	}
	// Flags after NAME are accepted, as the usage line shows them.
	if code, _, stderr := runCmd("ca", "issue", "--dir", dir, "node1", "--host", "10.1.2.3", "--host", "n1.lan"); code != 0 {
		t.Fatalf("ca issue: exit %d: %s", code, stderr)
	}
	fi, err := os.Stat(filepath.Join(dir, "node1-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("node key mode %v, want 0600", fi.Mode().Perm())
	}
	tc, err := pki.LoadTLSConfig(filepath.Join(dir, "ca.pem"), filepath.Join(dir, "node1.pem"), filepath.Join(dir, "node1-key.pem"))
	if err != nil {
		t.Fatalf("issued files do not make a TLS config: %v", err)
	}
	if err := tc.Certificates[0].Leaf.VerifyHostname("10.1.2.3"); err != nil {
		t.Errorf("--host not in certificate: %v", err)
	}
	if name, _ := pki.LocalName(tc); name != "node1" {
		t.Errorf("certificate name %q, want node1", name)
	}

	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"ca", "issue", "--dir", dir, "node1"}, 1, "already exists"},
		{[]string{"ca", "issue", "--dir", dir}, 2, "exactly one NAME"},
		{[]string{"ca", "issue", "--dir", dir, "a", "b"}, 2, "exactly one NAME"},
		{[]string{"ca", "issue", "--dir", dir, "bad name"}, 1, "not allowed"},
		{[]string{"ca", "issue", "--dir", dir, "ca"}, 1, "CA's own files"},
		{[]string{"ca", "issue", "--dir", dir, "n2", "--host", "bad host"}, 1, "neither an IP address nor a DNS name"},
		{[]string{"ca", "issue", "--dir", filepath.Join(dir, "nope"), "n3"}, 1, "ca init"},
		{[]string{"ca", "frob"}, 2, "unknown subcommand"},
	} {
		code, _, stderr := runCmd(c.args...)
		if code != c.code || !strings.Contains(stderr, c.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit %d mentioning %q", c.args[1:], code, stderr, c.code, c.want)
		}
	}
}
