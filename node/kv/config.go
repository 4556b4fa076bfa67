package kv

import (
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/tsubame-rt/tsubame/abi"
	"github.com/tsubame-rt/tsubame/internal/tomlconf"
)

// Config is the [kv] section of a node's TOML: the backends, the buckets
// declared on them and which components each bucket is granted to. A
// component not named in any grant still gets its private bucket (named
// after the component) on DefaultBackend.
type Config struct {
	// DefaultBackend holds the private buckets. Default "memory".
	DefaultBackend string `toml:"default_backend"`
	// JournalMargin is how long a step's journal outlives its LP's deadline.
	// Default 1m: a resend arriving just before the deadline still finds it.
	JournalMargin time.Duration `toml:"journal_margin"`
	// JournalKeep is how long a step's journal lives when its LP has no
	// deadline. Default 10m.
	JournalKeep time.Duration `toml:"journal_keep"`
	// Backends names backends other than the built-in "memory".
	Backends map[string]BackendConfig `toml:"backends"`
	// Buckets declares shared buckets, by name.
	Buckets map[string]BucketConfig `toml:"buckets"`
}

// BackendConfig is one [kv.backends.NAME] table.
type BackendConfig struct {
	// Type is "redis" or "memory" (another, separate in-process store).
	Type string `toml:"type"`
	// URL locates the Redis server: redis://[user:password@]host:port/db,
	// or rediss:// for TLS. With Mode "cluster", repeat addr=host:port as
	// query parameters for more seeds; with "sentinel", the host is a
	// sentinel and master_name=NAME is required.
	URL string `toml:"url"`
	// Mode is "single" (default), "cluster" or "sentinel".
	Mode string `toml:"mode"`
	// TLSCA is a PEM file of CAs to trust for rediss://, instead of the
	// system's.
	TLSCA string `toml:"tls_ca"`
	// Timeout bounds dialing and each command (a step's own deadline
	// bounds it too). Default 500ms.
	Timeout time.Duration `toml:"timeout"`
	// PoolSize is the most connections per node. Default 10 per core.
	PoolSize int `toml:"pool_size"`
}

// BucketConfig is one [kv.buckets.NAME] table.
type BucketConfig struct {
	// Backend holds the bucket. Default: DefaultBackend.
	Backend string `toml:"backend"`
	// Grant lists the components that may use the bucket.
	Grant []string `toml:"grant"`
	// Journal records every operation by step identity so a re-run step
	// applies none twice (docs/guarantees.md). Default true; a cache whose
	// operations are idempotent may turn it off to save the writes.
	Journal *bool `toml:"journal"`
}

// Memory is the name and type of the built-in backend.
const Memory = "memory"

// Redis is the type of a Redis backend.
const Redis = "redis"

// Defaults.
const (
	DefaultJournalMargin = time.Minute
	DefaultJournalKeep   = 10 * time.Minute
	DefaultTimeout       = 500 * time.Millisecond
)

func (c Config) withDefaults() Config {
	if c.DefaultBackend == "" {
		c.DefaultBackend = Memory
	}
	if c.JournalMargin == 0 {
		c.JournalMargin = DefaultJournalMargin
	}
	if c.JournalKeep == 0 {
		c.JournalKeep = DefaultJournalKeep
	}
	return c
}

// Validate reports every problem with c at once, each naming its key under
// prefix (the section's name in the file, "kv").
func (c Config) Validate(prefix string) error {
	c = c.withDefaults()
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, &tomlconf.Problem{Key: prefix + "." + key, Err: fmt.Errorf(format, args...)})
	}
	known := func(name string) bool { _, ok := c.Backends[name]; return ok || name == Memory }
	if !known(c.DefaultBackend) {
		bad("default_backend", "no backend %q (declare it under [%s.backends.%s])", c.DefaultBackend, prefix, c.DefaultBackend)
	}
	if c.JournalMargin < 0 {
		bad("journal_margin", "%v is negative", c.JournalMargin)
	}
	if c.JournalKeep < 0 {
		bad("journal_keep", "%v is negative", c.JournalKeep)
	}
	for _, name := range sortedKeys(c.Backends) {
		b := c.Backends[name]
		key := "backends." + name
		if name == Memory {
			bad(key, "%q is the built-in backend's name", name)
		}
		switch b.Type {
		case Memory:
			if b.URL != "" {
				bad(key+".url", "a memory backend has no URL")
			}
		case Redis:
			if _, err := redisOptions(b); err != nil {
				bad(key, "%v", err)
			}
		case "":
			bad(key+".type", "missing (\"redis\" or \"memory\")")
		default:
			bad(key+".type", "%q is not a backend type (\"redis\" or \"memory\")", b.Type)
		}
		if b.Timeout < 0 {
			bad(key+".timeout", "%v is negative", b.Timeout)
		}
		if b.PoolSize < 0 {
			bad(key+".pool_size", "%d is negative", b.PoolSize)
		}
	}
	for _, name := range sortedKeys(c.Buckets) {
		b := c.Buckets[name]
		key := "buckets." + name
		if !abi.ValidName(name) {
			bad(key, "%q is not a valid bucket name (1-64 ASCII letters, digits, '_', '-', '.', starting with a letter)", name)
		}
		if b.Backend != "" && !known(b.Backend) {
			bad(key+".backend", "no backend %q", b.Backend)
		}
		for _, comp := range b.Grant {
			if !abi.ValidName(comp) {
				bad(key+".grant", "%q is not a valid component name", comp)
			}
		}
	}
	return errors.Join(errs...)
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
