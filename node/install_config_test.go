package node

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestInstallConfig(t *testing.T) {
	p := writeConfig(t, `
admin_token_file = "token"
admin_plain = false
[modules]
max_bytes = 2097152
keep_old = "30s"
[autogrow]
enabled = true
high = 1.5
low = 0.2
sustain = "3s"
cooldown = "20s"
max_per_minute = 2
idle_remove = "5m"
`)
	c, err := LoadConfig(p)
	if err != nil {
		t.Fatal(err)
	}
	want := AutogrowConfig{Enabled: true, High: 1.5, Low: 0.2, Sustain: 3 * time.Second, Cooldown: 20 * time.Second,
		MaxPerMinute: 2, IdleRemove: 5 * time.Minute}
	if c.Autogrow != want || c.Modules.MaxBytes != 2<<20 || c.Modules.KeepOld != 30*time.Second || c.AdminPlain ||
		c.AdminTokenFile != filepath.Join(filepath.Dir(p), "token") {
		t.Errorf("decoded %+v %+v plain %v token %q", c.Autogrow, c.Modules, c.AdminPlain, c.AdminTokenFile)
	}
	d := DefaultConfig()
	if d.Autogrow.Enabled || !d.AdminPlain || d.Modules.MaxBytes != 16<<20 {
		t.Errorf("defaults: %+v plain %v %+v", d.Autogrow, d.AdminPlain, d.Modules)
	}
	// The commented sample says what the defaults say.
	sample, err := LoadConfig("../testdata/node.toml")
	if err != nil {
		t.Fatal(err)
	}
	if sample.Autogrow != d.Autogrow || sample.Modules != d.Modules || sample.AdminPlain != d.AdminPlain || sample.AdminTokenFile != "" {
		t.Errorf("testdata/node.toml: %+v %+v, defaults %+v %+v", sample.Autogrow, sample.Modules, d.Autogrow, d.Modules)
	}

	for _, tc := range []struct{ body, key, msg string }{
		{"[modules]\nmax_bytes = 10\n", "modules.max_bytes", "below 1024"},
		{"[modules]\nkeep_old = \"10ms\"\n", "modules.keep_old", "below 1s"},
		{"[autogrow]\nlow = 2.0\n", "autogrow.low", "below autogrow.high"},
		{"[autogrow]\nsustain = \"0s\"\n", "autogrow.sustain", "not positive"},
		{"[autogrow]\nmax_per_minute = 0\n", "autogrow.max_per_minute", "below 1"},
		{"[autogrow]\nenable = true\n", "autogrow.enable", "unknown key"},
	} {
		ce, msg := configErr(t, tc.body)
		if ce.Key != tc.key || !strings.Contains(msg, tc.msg) {
			t.Errorf("%q: %s, want key %s mentioning %q", tc.body, msg, tc.key, tc.msg)
		}
	}
}

// A token file that is missing or too short stops the node with an error
// that names the file and never shows the token.
func TestTokenFile(t *testing.T) {
	ca := testCA(t)
	dir := t.TempDir()
	for _, tc := range []struct{ token, want string }{
		{"", "no such file"},
		{"short-secret", "want at least 16"},
		{"two words of secret text", "one line without spaces"},
	} {
		c := testConfig("n1")
		c.DataDir = dir
		c.AdminTokenFile = filepath.Join(dir, "token")
		os.Remove(c.AdminTokenFile)
		if tc.token != "" {
			if err := os.WriteFile(c.AdminTokenFile, []byte(tc.token), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		tlsConf, err := ca.IssueTLS("n1")
		if err != nil {
			t.Fatal(err)
		}
		n, err := New(context.Background(), c, Options{TLS: tlsConf, Logger: quiet})
		if err == nil {
			n.Close()
			t.Fatalf("token %q accepted", tc.token)
		}
		if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "admin_token_file") ||
			(tc.token != "" && strings.Contains(err.Error(), tc.token)) {
			t.Errorf("token %q: %v, want it to mention %q and admin_token_file, never the token", tc.token, err, tc.want)
		}
	}
}
