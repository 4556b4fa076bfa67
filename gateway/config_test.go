package gateway

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tsubame-rt/tsubame/internal/mesh/transport"
	"github.com/tsubame-rt/tsubame/internal/tomlconf"
	"github.com/tsubame-rt/tsubame/lp"
)

func TestLoadExampleConfig(t *testing.T) {
	c, err := LoadConfig("../testdata/gateway.toml")
	if err != nil {
		t.Fatal(err)
	}
	def := DefaultConfig()
	if c.HTTP != def.HTTP || c.Dispatch != def.Dispatch || c.Listen != def.Listen || c.Gossip != def.Gossip || c.Membership != def.Membership ||
		c.Limits != def.Limits {
		t.Errorf("the example's documented defaults differ from DefaultConfig:\n%+v\n%+v", c, def)
	}
	if len(c.Routes) != 2 || c.Routes[0].Input != "query:name" || c.Routes[1].Headers[1] != "Accept" {
		t.Errorf("routes %+v", c.Routes)
	}
	abs, _ := filepath.Abs("../testdata/certs/ca.pem")
	if got, _ := filepath.Abs(c.TLS.CA); got != abs {
		t.Errorf("ca_file %q not resolved against the config's directory (%q)", c.TLS.CA, abs)
	}
}

func writeConfig(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "gw.toml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

const minimalRoute = `
[[route]]
path = "/hello"
component = "hello"
kind = "hello"
`

func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct{ text, want string }{
		{"[http]\nlisen = \"x\"\n" + minimalRoute, ":2: http.lisen: unknown key"},
		{minimalRoute + "input_mode = \"body\"\n", ":6: route.input_mode: unknown key"},
		{"[dispatch]\nattempts = \"three\"\n" + minimalRoute, ":2: dispatch.attempts: incompatible types"},
		{"[dispatch]\nattempt_timeout = \"soon\"\n" + minimalRoute, "attempt_timeout"},
		{"[dispatch]\nattempts = 0\n" + minimalRoute, ":2: dispatch.attempts: is 0"},
		{"[dispatch]\npolicy = \"fastest\"\n" + minimalRoute, "dispatch.policy"},
		{"[http]\ntcp = \"https\"\n" + minimalRoute, "http.tcp"},
		{"[http]\ncert = \"a.crt\"\n" + minimalRoute, ":2: http.cert: cert and key go together"},
		{"[tls]\nca = \"ca.crt\"\n" + minimalRoute, ":1: tls: ca, cert and key go together"},
		{"listen = \"nowhere\"\n" + minimalRoute, ":1: listen: \"nowhere\" is not host:port"},
		{"listen = \"0.0.0.0:0\"\n" + minimalRoute, ":1: listen: \"0.0.0.0:0\" is not an address peers can dial"},
		{"[membership]\nkey = \"c2hvcnQ=\"\n" + minimalRoute, ":2: membership.key: 5 bytes"},
		{"[http]\nmax_body_bytes = 20000000\n" + minimalRoute, "http.max_body_bytes"},
		{"[http]\nread_header_timeout = \"0s\"\n" + minimalRoute, "slow client"},
		{"name = \"gw\"\n", "no routes"},
		{"[[route]]\npath = \"/x\"\ncomponent = \"c\"\nkind = \"k\"\ninput = \"path:id\"\n", ":1: route 1 (/x): input \"path:id\" names no wildcard"},
		{minimalRoute + minimalRoute + "input = \"form\"\n", ":7: route 2 (/hello): unknown input mode"},
		{"name = \"gw\"\nlisten = = 1\n", ":2: listen: expected value"},
		{"[limits]\nmax_lp_bytes = 1000\n" + minimalRoute, ":2: limits.max_lp_bytes: 1000 is below the ABI's guarantee of 2097152"},
		{"[limits]\nmax_lp_bytes = \"big\"\n" + minimalRoute, ":2: limits.max_lp_bytes: incompatible types"},
		{"[limits]\nstep_timeout = \"2s\"\n" + minimalRoute, ":2: limits.step_timeout: unknown key"},
	} {
		path := writeConfig(t, tc.text)
		_, err := LoadConfig(path)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), path) {
			t.Errorf("%q:\n error %v\n want it to name %s and contain %q", tc.text, err, path, tc.want)
		}
	}
}

func TestConfigDurations(t *testing.T) {
	c, err := LoadConfig(writeConfig(t, "[dispatch]\nattempt_timeout = \"250ms\"\n"+minimalRoute))
	if err != nil {
		t.Fatal(err)
	}
	if c.Dispatch.AttemptTimeout != 250*time.Millisecond {
		t.Errorf("attempt_timeout = %s", c.Dispatch.AttemptTimeout)
	}
}

// limits.max_lp_bytes, the node's key, decodes and sizes the transport.
func TestConfigMaxLPBytes(t *testing.T) {
	c, err := LoadConfig(writeConfig(t, "[limits]\nmax_lp_bytes = 33554432\n"+minimalRoute))
	if err != nil {
		t.Fatal(err)
	}
	if c.Limits.MaxLPBytes != 32<<20 {
		t.Fatalf("max_lp_bytes = %d, want %d", c.Limits.MaxLPBytes, 32<<20)
	}
	tc := transportConfig(c, nil, nil, nil)
	if tc.MaxFrame != 32<<20+transport.FrameSlack || tc.Limits.MaxTotal != 32<<20 {
		t.Errorf("transport MaxFrame %d, Limits.MaxTotal %d; want %d and %d", tc.MaxFrame, tc.Limits.MaxTotal, 32<<20+transport.FrameSlack, 32<<20)
	}
	if d := DefaultConfig().Limits.MaxLPBytes; d != lp.DefaultLimits.MaxTotal {
		t.Errorf("default max_lp_bytes %d, want the nodes' default %d", d, lp.DefaultLimits.MaxTotal)
	}
}

// Gateway config errors are the node's type: a caller reads the file, line
// and key with errors.As.
func TestConfigErrorIsTyped(t *testing.T) {
	_, err := LoadConfig(writeConfig(t, "[dispatch]\nattempts = 0\n"+minimalRoute))
	var ce *tomlconf.Error
	if !errors.As(err, &ce) || ce.Line != 2 || ce.Key != "dispatch.attempts" {
		t.Fatalf("error %v (%T), want a *tomlconf.Error at line 2 for dispatch.attempts", err, err)
	}
}
