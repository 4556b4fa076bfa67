package wasmhost

import (
	"log/slog"
	"runtime"
	"time"

	"github.com/tsubame-rt/tsubame/lp"
)

// Config configures a Runtime. It is an immutable builder: every WithX
// returns a modified copy. NewConfig has every default.
type Config struct {
	memoryLimitPages uint32
	stepTimeout      time.Duration
	cacheDir         string
	maxInstances     int
	limits           lp.Limits
	logger           *slog.Logger
	recycleSteps     int
	recyclePages     uint32
	logLimits        LogLimits
	blobs            Blobs
	kv               KV
	fresh            map[string]bool // components whose every step gets a new instance
}

// defaultConfig holds every default in one place.
var defaultConfig = Config{
	// 64 MiB per instance: ABI.md §5's floor, and enough for a Go guest
	// (about 7 MiB after _initialize) with room for a 1 MiB request.
	memoryLimitPages: 1024,
	stepTimeout:      time.Second,
	// maxInstances 0 means runtime.GOMAXPROCS(0) at New: more instances than
	// cores cannot run at once, they would only cost memory.
	maxInstances: 0,
	recycleSteps: 10000,
	// recyclePages 0 means half of memoryLimitPages.
	recyclePages: 0,
	logLimits:    defaultLogLimits,
}

// NewConfig returns the default configuration.
func NewConfig() Config { return defaultConfig }

// WithMemoryLimitPages sets the most 64 KiB pages an instance's memory may
// have. Default 1024 (64 MiB). A module whose memory starts larger is
// refused at load (RuleMemory); a guest growing past it gets -1 from
// memory.grow and, if it then traps in that step, fails with
// abi.CodeMemoryLimit.
func (c Config) WithMemoryLimitPages(pages uint32) Config {
	c.memoryLimitPages = pages
	return c
}

// WithStepTimeout sets how long one step may run. Default 1s. A step past
// it is stopped and fails with abi.CodeTimeout; a deadline on the context
// given to Step applies too, whichever comes first. Instantiating an
// instance (including _initialize) may take ten times as long.
func (c Config) WithStepTimeout(d time.Duration) Config {
	c.stepTimeout = d
	return c
}

// WithCacheDir keeps compiled machine code in dir, so a restarted process
// skips compilation. Default "": an in-memory cache for the Runtime's life.
func (c Config) WithCacheDir(dir string) Config {
	c.cacheDir = dir
	return c
}

// WithMaxInstances caps the instances of one module, which is also the most
// steps of that module that run at once; further steps wait for a free
// instance. Default runtime.GOMAXPROCS(0).
func (c Config) WithMaxInstances(n int) Config {
	c.maxInstances = n
	return c
}

// WithLimits sets the size limits steps are held to (reply, input of a call,
// continuation, error message, entries and depth). Zero fields take
// lp.DefaultLimits.
func (c Config) WithLimits(l lp.Limits) Config {
	c.limits = l
	return c
}

// WithLogger sets where guest log messages, guest stdout and stderr, and the
// host's own warnings go. Default slog.Default().
func (c Config) WithLogger(l *slog.Logger) Config {
	c.logger = l
	return c
}

// WithLogLimits bounds guest log output (log calls, stdout and stderr
// together) per step and per component per second; a zero field keeps its
// default (64 KiB per step; 256 KiB a second with bursts of 1 MiB per
// component). Output over them is dropped, counted (Runtime.LogDropped) and
// said once.
func (c Config) WithLogLimits(l LogLimits) Config {
	c.logLimits = l
	return c
}

// WithRecycle sets when a pooled instance is retired and replaced by a
// fresh one: after steps steps (0: never by count), or as soon as its memory
// exceeds pages 64 KiB pages (0: half of the memory limit). Defaults 10000
// steps and half the memory limit. A Go guest's collector does not run
// between the host's calls (Go issue 65199), so its memory only grows;
// recycling bounds that, and bounds any state a guest keeps against the
// rules. Replacements are instantiated in the background, so no step waits
// for one.
func (c Config) WithRecycle(steps int, pages uint32) Config {
	c.recycleSteps, c.recyclePages = steps, pages
	return c
}

// WithBlobs sets where large data goes (ABI.md §9). Default nil: no blobs;
// blob_put and blob_read answer abi.CodeUnavailable, and replies and call
// inputs are kept inline up to the limits.
func (c Config) WithBlobs(b Blobs) Config {
	c.blobs = b
	return c
}

// WithKV sets the store behind the kv_* host functions (ABI.md §10).
// Default nil: every KV operation answers abi.KVNotGranted, as if the
// component had been granted no bucket.
func (c Config) WithKV(kv KV) Config {
	c.kv = kv
	return c
}

// WithFreshInstances makes every step of the named components run in an
// instance no earlier step used: the instance is discarded after the step
// and a new one instantiated (from the compiled module, so data segments,
// globals and memory start as the module declares them). Default: none, and
// instances are reused across steps of any LPs (ABI.md §2). For components
// that cannot be trusted to leave no state (or a previous request's bytes)
// behind; each step then pays an instantiation, measured in BENCHMARKS.md.
// The names replace any given before.
func (c Config) WithFreshInstances(components ...string) Config {
	c.fresh = make(map[string]bool, len(components))
	for _, n := range components {
		c.fresh[n] = true
	}
	return c
}

// resolved fills the zero values that depend on other settings.
func (c Config) resolved() Config {
	if c.memoryLimitPages == 0 {
		c.memoryLimitPages = defaultConfig.memoryLimitPages
	}
	if c.memoryLimitPages > 65536 {
		c.memoryLimitPages = 65536
	}
	if c.stepTimeout <= 0 {
		c.stepTimeout = defaultConfig.stepTimeout
	}
	if c.maxInstances <= 0 {
		c.maxInstances = runtime.GOMAXPROCS(0)
	}
	if c.recycleSteps < 0 {
		c.recycleSteps = 0
	}
	if c.recyclePages == 0 {
		c.recyclePages = c.memoryLimitPages / 2
	}
	if c.logger == nil {
		c.logger = slog.Default()
	}
	for _, f := range []struct {
		v   *int
		def int
	}{
		{&c.logLimits.PerStep, defaultLogLimits.PerStep}, {&c.logLimits.PerSecond, defaultLogLimits.PerSecond}, {&c.logLimits.Burst, defaultLogLimits.Burst},
	} {
		if *f.v <= 0 {
			*f.v = f.def
		}
	}
	c.limits = withDefaults(c.limits)
	return c
}

// withDefaults fills the zero fields of l from lp.DefaultLimits.
func withDefaults(l lp.Limits) lp.Limits {
	d := lp.DefaultLimits
	for _, f := range []struct {
		v   *int
		def int
	}{
		{&l.MaxEntries, d.MaxEntries}, {&l.MaxDepth, d.MaxDepth}, {&l.MaxBytes, d.MaxBytes},
		{&l.MaxCont, d.MaxCont}, {&l.MaxName, d.MaxName}, {&l.MaxMsg, d.MaxMsg},
		{&l.MaxTrace, d.MaxTrace}, {&l.MaxTotal, d.MaxTotal},
	} {
		if *f.v <= 0 {
			*f.v = f.def
		}
	}
	return l
}
