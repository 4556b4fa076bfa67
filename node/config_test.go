package node

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "node.toml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// The commented sample is valid and says what DefaultConfig says.
func TestSampleConfig(t *testing.T) {
	c, err := LoadConfig("../testdata/node.toml")
	if err != nil {
		t.Fatal(err)
	}
	d := DefaultConfig()
	if len(c.Limits.FreshInstances) != 0 {
		t.Errorf("limits.fresh_instances = %q, want none", c.Limits.FreshInstances)
	}
	c.Limits.FreshInstances = nil // [] in the sample
	if c.Listen != d.Listen || c.Gossip != d.Gossip || c.Admin != d.Admin || c.Scheduler != d.Scheduler ||
		c.Membership != d.Membership || !reflect.DeepEqual(c.Limits, d.Limits) || c.Workers != 0 || c.Queue != 0 {
		t.Errorf("sample config differs from the defaults:\n got %+v\nwant %+v", c, d)
	}
	abs, _ := filepath.Abs("../testdata/echo.wasm")
	if c.Components["echo"] != abs {
		t.Errorf("components.echo = %q, want %q (relative to the file)", c.Components["echo"], abs)
	}
}

func TestConfigValues(t *testing.T) {
	p := writeConfig(t, `
name = "n1"
listen = "127.0.0.1:0"
workers = 3
seeds = ["127.0.0.1:1"]
[scheduler]
policy = "round-robin"
stale_after = "2s"
[limits]
step_timeout = "5s"
`)
	c, err := LoadConfig(p)
	if err != nil {
		t.Fatal(err)
	}
	if c.Name != "n1" || c.Workers != 3 || c.Scheduler.Policy != "round-robin" || c.Scheduler.StaleAfter != 2*time.Second ||
		c.Limits.StepTimeout != 5*time.Second || len(c.Seeds) != 1 || c.Scheduler.Attempts != 3 {
		t.Errorf("decoded %+v", c)
	}
	if d := c.withDefaults(); d.Queue != 3*queuePerWorker {
		t.Errorf("default queue = %d, want %d", d.Queue, 3*queuePerWorker)
	}
}

// configErr loads body and returns the one ConfigError it must produce.
func configErr(t *testing.T, body string) (*ConfigError, string) {
	t.Helper()
	p := writeConfig(t, body)
	_, err := LoadConfig(p)
	if err == nil {
		t.Fatalf("config accepted:\n%s", body)
	}
	var ce *ConfigError
	if !errors.As(err, &ce) {
		t.Fatalf("error %v is not a *ConfigError", err)
	}
	if ce.File != p {
		t.Errorf("error names file %q, want %q", ce.File, p)
	}
	return ce, err.Error()
}

func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		line       int
		key, msg   string
	}{
		{"unknown top-level key", "name = \"a\"\nlisen = \"x:1\"\n", 2, "lisen", "unknown key"},
		{"unknown key in table", "[scheduler]\npolicy = \"p2c\"\n\n# c\npolcy = \"x\"\n", 5, "scheduler.polcy", "unknown key"},
		{"unknown table", "workers = 1\n[sheduler]\npolicy = \"p2c\"\n", 2, "sheduler", "unknown key"},
		{"dotted unknown key", "workers = 1\nlimits.stepp = 3\n", 2, "limits.stepp", "unknown key"},
		{"wrong type", "workers = \"four\"\n", 1, "workers", "incompatible types"},
		{"wrong type in table", "[limits]\nmemory_pages = 1.5\n", 2, "limits.memory_pages", "incompatible types"},
		{"bad duration", "[scheduler]\nstale_after = \"soon\"\n", 2, "scheduler.stale_after", "soon"},
		{"syntax", "name = \"a\"\nworkers = = 2\n", 2, "workers", "expected value"},
		{"bad policy", "[scheduler]\npolicy = \"fastest\"\n", 2, "scheduler.policy", "fastest"},
		{"below abi floor", "[limits]\nmemory_pages = 16\n", 2, "limits.memory_pages", "guarantee"},
		{"bad component name", "[components]\n\"9lives\" = \"x.wasm\"\n", 2, "components.9lives", "not a valid"},
		{"bad address", "listen = \"nowhere\"\n", 1, "listen", "host:port"},
		{"tls partial", "[tls]\nca = \"ca.pem\"\n", 1, "tls", "together"},
		{"stale vs report", "[scheduler]\nstale_after = \"100ms\"\n", 2, "scheduler.stale_after", "twice"},
		{"bad key", "[membership]\nkey = \"c2hvcnQ=\"\n", 2, "membership.key", "want 16"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ce, msg := configErr(t, tc.body)
			if ce.Line != tc.line {
				t.Errorf("line %d, want %d (%s)", ce.Line, tc.line, msg)
			}
			if ce.Key != tc.key {
				t.Errorf("key %q, want %q (%s)", ce.Key, tc.key, msg)
			}
			if !strings.Contains(msg, tc.msg) {
				t.Errorf("message %q does not mention %q", msg, tc.msg)
			}
			if want := ce.File + ":"; !strings.HasPrefix(msg, want) {
				t.Errorf("message %q does not start with %q", msg, want)
			}
		})
	}
}

func TestConfigMissingFile(t *testing.T) {
	if _, err := LoadConfig(filepath.Join(t.TempDir(), "none.toml")); err == nil || !strings.Contains(err.Error(), "none.toml") {
		t.Errorf("missing file: %v", err)
	}
}
