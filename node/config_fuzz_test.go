package node

import (
	"os"
	"testing"
)

// FuzzParseConfig: any bytes give a Config or an error, never a panic; a
// Config that parses validates (ParseConfig validates) and parses again the
// same from the same bytes.
func FuzzParseConfig(f *testing.F) {
	if b, err := os.ReadFile("../testdata/node.toml"); err == nil {
		f.Add(b)
	}
	f.Add([]byte("name = \"n1\"\nworkers = 2\n[limits]\nstep_timeout = \"1s\"\n"))
	f.Add([]byte("workers = -1\n"))
	f.Add([]byte("[components]\nx = 1\n"))
	f.Add([]byte("seeds = [\"a\", 1]\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c1, err1 := ParseConfig("fuzz.toml", b)
		c2, err2 := ParseConfig("fuzz.toml", b)
		if (err1 == nil) != (err2 == nil) || (err1 == nil && c1.Name != c2.Name) {
			t.Fatalf("two parses of the same bytes differ: %v / %v", err1, err2)
		}
	})
}
