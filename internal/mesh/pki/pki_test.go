package pki

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func mustCA(t *testing.T, name string) *CA {
	t.Helper()
	ca, err := NewCA(name)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

func TestIssueFields(t *testing.T) {
	ca := mustCA(t, "test-ca")
	certPEM, keyPEM, err := ca.Issue("node-1", "10.0.0.7", "n1.example.internal")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(keyPEM), "PRIVATE KEY") {
		t.Fatalf("key is not PEM: %q", keyPEM)
	}
	c, err := parseCert(certPEM)
	if err != nil {
		t.Fatal(err)
	}
	if c.Subject.CommonName != "node-1" {
		t.Errorf("CN = %q, want node-1", c.Subject.CommonName)
	}
	if c.IsCA {
		t.Error("leaf certificate is a CA")
	}
	hasEKU := map[x509.ExtKeyUsage]bool{}
	for _, u := range c.ExtKeyUsage {
		hasEKU[u] = true
	}
	if !hasEKU[x509.ExtKeyUsageServerAuth] || !hasEKU[x509.ExtKeyUsageClientAuth] {
		t.Errorf("ExtKeyUsage = %v, want server and client auth", c.ExtKeyUsage)
	}
	for _, h := range []string{"127.0.0.1", "::1", "localhost", "node-1", "10.0.0.7", "n1.example.internal"} {
		if err := c.VerifyHostname(h); err != nil {
			t.Errorf("certificate not valid for %s: %v", h, err)
		}
	}
	if err := c.VerifyHostname("10.0.0.8"); err == nil {
		t.Error("certificate valid for an address it was not issued for")
	}
}

func TestIssueRejectsBadInput(t *testing.T) {
	ca := mustCA(t, "test-ca")
	for _, name := range []string{"", "-lead", "has space", "slash/name", strings.Repeat("a", 65), "ünï"} {
		if _, _, err := ca.Issue(name); err == nil {
			t.Errorf("Issue(%q) succeeded, want an error", name)
		}
	}
	for _, host := range []string{"", "bad host", "a..b", "-x.example"} {
		if _, _, err := ca.Issue("n", host); err == nil {
			t.Errorf("Issue with host %q succeeded, want an error", host)
		}
	}
	if _, err := NewCA("bad name"); err == nil {
		t.Error("NewCA accepted a name with a space")
	}
}

// handshake runs a TLS handshake between a server and a client configuration
// over loopback TCP and returns each side's error.
func handshake(t *testing.T, server, client *tls.Config) (serverErr, clientErr error, peerOfServer string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		srv := tls.Server(c, server)
		err = srv.Handshake()
		if err == nil {
			peerOfServer, _ = PeerName(srv.ConnectionState())
		}
		done <- err
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	cc := client.Clone()
	cc.ServerName = "127.0.0.1"
	clientErr = tls.Client(c, cc).Handshake()
	serverErr = <-done
	return serverErr, clientErr, peerOfServer
}

func TestMutualTLS(t *testing.T) {
	ca := mustCA(t, "test-ca")
	srv, err := ca.IssueTLS("server")
	if err != nil {
		t.Fatal(err)
	}
	cli, err := ca.IssueTLS("client")
	if err != nil {
		t.Fatal(err)
	}
	if n, err := LocalName(cli); err != nil || n != "client" {
		t.Fatalf("LocalName = %q, %v; want client", n, err)
	}
	if srv.MinVersion != tls.VersionTLS13 || srv.ClientAuth != tls.RequireAndVerifyClientCert {
		t.Fatalf("config: MinVersion %x ClientAuth %v", srv.MinVersion, srv.ClientAuth)
	}
	serr, cerr, peer := handshake(t, srv, cli)
	if serr != nil || cerr != nil {
		t.Fatalf("handshake under one CA failed: server %v, client %v", serr, cerr)
	}
	if peer != "client" {
		t.Fatalf("server saw peer %q, want client", peer)
	}
}

func TestForeignCARejected(t *testing.T) {
	ours, theirs := mustCA(t, "ours"), mustCA(t, "theirs")
	srv, err := ours.IssueTLS("server")
	if err != nil {
		t.Fatal(err)
	}
	intruder, err := theirs.IssueTLS("intruder")
	if err != nil {
		t.Fatal(err)
	}
	if serr, cerr, _ := handshake(t, srv, intruder); serr == nil || cerr == nil {
		t.Fatalf("handshake with a foreign CA's certificate: server err %v, client err %v; want both to fail", serr, cerr)
	}

	// A client that presents no certificate at all.
	anon := &tls.Config{MinVersion: tls.VersionTLS13, RootCAs: srv.RootCAs}
	if serr, _, _ := handshake(t, srv, anon); serr == nil {
		t.Fatal("server accepted a client without a certificate")
	}

	// A node configured with another CA's certificate fails at startup.
	certPEM, keyPEM, err := theirs.Issue("x")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := TLSConfig(ours.CertPEM(), certPEM, keyPEM); err == nil || !strings.Contains(err.Error(), "not issued by CA") {
		t.Fatalf("TLSConfig with a foreign certificate: err = %v, want 'not issued by CA'", err)
	}
}

func TestTLSConfigBadInput(t *testing.T) {
	ca := mustCA(t, "ca")
	certPEM, keyPEM, err := ca.Issue("n")
	if err != nil {
		t.Fatal(err)
	}
	_, otherKey, err := ca.Issue("m")
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string][3][]byte{
		"garbage ca":     {[]byte("nope"), certPEM, keyPEM},
		"key as ca":      {keyPEM, certPEM, keyPEM},
		"mismatched key": {ca.CertPEM(), certPEM, otherKey},
		"empty cert":     {ca.CertPEM(), nil, keyPEM},
	}
	for name, c := range cases {
		if _, err := TLSConfig(c[0], c[1], c[2]); err == nil {
			t.Errorf("%s: TLSConfig succeeded", name)
		}
	}
}

func TestSaveLoad(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pki")
	ca := mustCA(t, "cluster")
	if err := ca.Save(dir); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, CAKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("ca key mode %v, want 0600", perm)
	}
	if err := ca.Save(dir); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("second Save: err = %v, want 'already exists'", err)
	}
	loaded, err := LoadCA(filepath.Join(dir, CACertFile), filepath.Join(dir, CAKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if loaded.Name() != "cluster" {
		t.Errorf("loaded CA name %q", loaded.Name())
	}
	// A certificate from the loaded CA is trusted by a node configured with
	// the original CA certificate: it is the same CA.
	certPEM, keyPEM, err := loaded.Issue("n")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := TLSConfig(ca.CertPEM(), certPEM, keyPEM); err != nil {
		t.Fatalf("certificate from the reloaded CA: %v", err)
	}

	// Wrong or missing files give errors that name the problem.
	other := mustCA(t, "other")
	otherDir := filepath.Join(t.TempDir(), "other")
	if err := other.Save(otherDir); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadCA(filepath.Join(dir, CACertFile), filepath.Join(otherDir, CAKeyFile)); err == nil ||
		!strings.Contains(err.Error(), "does not hold the private key") {
		t.Errorf("mismatched key: err = %v", err)
	}
	if _, err := LoadCA(filepath.Join(dir, "missing.pem"), filepath.Join(dir, CAKeyFile)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: err = %v, want fs.ErrNotExist", err)
	}
	leafFile := filepath.Join(t.TempDir(), "leaf.pem")
	if err := os.WriteFile(leafFile, certPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadCA(leafFile, filepath.Join(dir, CAKeyFile)); err == nil || !strings.Contains(err.Error(), "not a CA") {
		t.Errorf("leaf as CA: err = %v", err)
	}
}

func TestCheckName(t *testing.T) {
	for _, ok := range []string{"a", "node-1", "gw_2.local", "N9"} {
		if err := CheckName(ok); err != nil {
			t.Errorf("CheckName(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", ".x", "_x", "a b", "a/b", "a\x00"} {
		if err := CheckName(bad); err == nil {
			t.Errorf("CheckName(%q) = nil", bad)
		}
	}
}

// A certificate carries the role it was issued with, signed: RoleOf and
// LocalRole read it back; one issued without a role reads as RoleLegacy.
func TestRoles(t *testing.T) {
	ca, err := NewCA("test-ca")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []Role{RoleNode, RoleGateway, RoleOperator, RoleLegacy} {
		tc, err := ca.IssueTLSRole("m", r)
		if err != nil {
			t.Fatalf("%s: %v", r, err)
		}
		if got, err := LocalRole(tc); err != nil || got != r {
			t.Errorf("issued as %s, reads as %q (%v)", r, got, err)
		}
	}
	if _, _, err := ca.IssueRole("m", Role("root")); err == nil {
		t.Error("IssueRole accepted an unknown role")
	}
	if r, err := ParseRole("gateway"); err != nil || r != RoleGateway {
		t.Errorf("ParseRole(gateway) = %q, %v", r, err)
	}
	if _, err := ParseRole(""); err == nil {
		t.Error("ParseRole accepted an empty role")
	}
}
