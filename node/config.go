package node

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"time"

	"github.com/tsubame-rt/tsubame/internal/mesh/transport"
	"github.com/tsubame-rt/tsubame/node/blob"

	"github.com/tsubame-rt/tsubame/abi"
	"github.com/tsubame-rt/tsubame/internal/mesh/cluster"
	"github.com/tsubame-rt/tsubame/internal/mesh/sched"
	"github.com/tsubame-rt/tsubame/internal/obs"
	"github.com/tsubame-rt/tsubame/internal/tomlconf"
	"github.com/tsubame-rt/tsubame/lp"
	"github.com/tsubame-rt/tsubame/node/kv"
)

// Config is a node's configuration, as read from TOML by LoadConfig. Every
// field's default is in DefaultConfig and docs/config.md.
type Config struct {
	// Member holds the keys every member shares (name, listen, gossip,
	// seeds, [tls]): Name identifies the node in the cluster and in LP
	// traces and must be its certificate's; Listen is the QUIC address LPs
	// arrive on.
	tomlconf.Member
	// Admin is the address of the admin API (HTTPS, and plain HTTP for
	// /healthz and /v1/status); "off" disables it.
	Admin string `toml:"admin"`
	// AdminTokenFile holds the bearer token the admin API's module
	// endpoints require; "" turns those endpoints off.
	AdminTokenFile string `toml:"admin_token_file"`
	// AdminPlain also answers /healthz and /v1/status over plain HTTP on
	// the admin address, for probes and clients without the CA.
	AdminPlain bool `toml:"admin_plain"`
	// DataDir keeps the compiled-module cache; "" keeps it in memory.
	DataDir string `toml:"data_dir"`
	// Workers run steps; Queue bounds the LPs waiting for one.
	Workers int `toml:"workers"`
	Queue   int `toml:"queue"`
	// Components maps a component name to the module file loaded at start.
	Components map[string]string `toml:"components"`

	Scheduler  SchedulerConfig  `toml:"scheduler"`
	Membership MembershipConfig `toml:"membership"`
	Limits     LimitsConfig     `toml:"limits"`
	Modules    ModulesConfig    `toml:"modules"`
	Autogrow   AutogrowConfig   `toml:"autogrow"`
	// Blobs: large inputs and replies by reference (node/blob,
	// docs/config.md [blobs]).
	Blobs blob.Config `toml:"blobs"`
	// KV is the key-value capability: backends, buckets, grants (package
	// node/kv, docs/kv.md).
	KV kv.Config `toml:"kv"`
	// Tracing exports step spans over OTLP; off unless an endpoint is set.
	Tracing obs.TraceConfig `toml:"tracing"`
	// Log sets the level and format of the node's log (`tsubame node`).
	Log obs.LogConfig `toml:"log"`
}

// SchedulerConfig says where the next step of an LP runs.
type SchedulerConfig struct {
	// Policy picks among remote holders: "p2c", "weighted-random" or
	// "round-robin".
	Policy string `toml:"policy"`
	// A node counts as overloaded, and sends work away even when it holds the
	// next component, when its load is at least OverloadMin and above
	// OverloadRatio times the mean load of the other holders.
	OverloadRatio float64 `toml:"overload_ratio"`
	OverloadMin   float64 `toml:"overload_min"`
	// StaleAfter: a peer whose last load report is older is no candidate.
	StaleAfter time.Duration `toml:"stale_after"`
	// Attempts bounds how many holders one migration tries.
	Attempts int `toml:"attempts"`
	// CPUWeight is how much process CPU use adds to the load figure:
	// load = (queued + running) / workers + CPUWeight * cpu, cpu in [0, 1].
	CPUWeight float64 `toml:"cpu_weight"`
}

// MembershipConfig tunes gossip and failure detection (see package cluster).
type MembershipConfig struct {
	ReportInterval time.Duration `toml:"report_interval"`
	ProbeInterval  time.Duration `toml:"probe_interval"`
	ProbeTimeout   time.Duration `toml:"probe_timeout"`
	GossipInterval time.Duration `toml:"gossip_interval"`
	SuspicionMult  int           `toml:"suspicion_mult"`
	// GossipKey is [membership] key, shared with gateways.
	tomlconf.GossipKey
}

// TLSConfig names the PEM files of the cluster CA and this node's certificate.
type TLSConfig = tomlconf.TLSFiles

// LimitsConfig bounds what one step and one LP may use. Values below the
// ABI's guarantees (abi/ABI.md §5) are refused.
type LimitsConfig struct {
	StepTimeout time.Duration `toml:"step_timeout"`
	MemoryPages uint32        `toml:"memory_pages"`
	// LPLimit is max_lp_bytes, shared with gateways.
	tomlconf.LPLimit
	MaxInput   int `toml:"max_input"`
	MaxCont    int `toml:"max_cont"`
	MaxEntries int `toml:"max_entries"`
	MaxDepth   int `toml:"max_depth"`
	MaxTrace   int `toml:"max_trace"`
	// FreshInstances names components whose every step runs in a new
	// instance (ABI.md §2): for code that cannot be trusted to leave no
	// state behind, at the cost of an instantiation per step.
	FreshInstances []string `toml:"fresh_instances"`
}

// DefaultPolicy is the scheduler policy a node uses unless configured; the
// scheduler-quality benchmark chose it (docs/RATIONALE.md).
const DefaultPolicy = sched.P2C

// DefaultConfig returns a configuration with every default filled in except
// Name and Workers, which depend on the machine (see withDefaults).
func DefaultConfig() Config {
	return Config{
		Member:     tomlconf.Member{Listen: "127.0.0.1:7450", Gossip: "127.0.0.1:7946"},
		Admin:      "127.0.0.1:7480",
		AdminPlain: true,
		Modules:    defaultModules,
		Autogrow:   defaultAutogrow,
		Scheduler: SchedulerConfig{
			Policy:        DefaultPolicy,
			OverloadRatio: 1.5,
			OverloadMin:   1.0,
			StaleAfter:    cluster.DefaultStaleAfter,
			Attempts:      3,
			CPUWeight:     0.25,
		},
		Membership: MembershipConfig{
			ReportInterval: cluster.DefaultReportInterval,
			ProbeInterval:  cluster.DefaultProbeInterval,
			ProbeTimeout:   cluster.DefaultProbeTimeout,
			GossipInterval: cluster.DefaultGossipInterval,
			SuspicionMult:  cluster.DefaultSuspicionMult,
		},
		Limits: LimitsConfig{
			StepTimeout: time.Second,
			MemoryPages: 1024,
			LPLimit:     tomlconf.LPLimit{MaxLPBytes: lp.DefaultLimits.MaxTotal},
			MaxInput:    lp.DefaultLimits.MaxBytes,
			MaxCont:     lp.DefaultLimits.MaxCont,
			MaxEntries:  lp.DefaultLimits.MaxEntries,
			MaxDepth:    lp.DefaultLimits.MaxDepth,
			MaxTrace:    lp.DefaultLimits.MaxTrace,
		},
	}
}

// queuePerWorker sizes the default run queue: deep enough to ride out a
// burst between two load reports, shallow enough that an overloaded node
// refuses (and the sender re-picks) instead of hoarding work.
const queuePerWorker = 64

// withDefaults fills the machine-dependent defaults.
func (c Config) withDefaults() Config {
	if c.Name == "" {
		c.Name, _ = os.Hostname()
	}
	if c.Workers == 0 {
		c.Workers = runtime.GOMAXPROCS(0)
	}
	if c.Queue == 0 {
		c.Queue = queuePerWorker * c.Workers
	}
	return c
}

// LpLimits returns the LP limits the node enforces.
func (c Config) LpLimits() lp.Limits {
	l := lp.DefaultLimits
	l.MaxTotal = c.Limits.MaxLPBytes
	l.MaxBytes = c.Limits.MaxInput
	l.MaxCont = c.Limits.MaxCont
	l.MaxEntries = c.Limits.MaxEntries
	l.MaxDepth = c.Limits.MaxDepth
	l.MaxTrace = c.Limits.MaxTrace
	return l
}

// Validate reports every problem with c at once, each naming its key.
func (c Config) Validate() error {
	var ps tomlconf.Problems
	bad := ps.Bad
	ps.Add("blobs", c.Blobs.Validate(c.Limits.MaxLPBytes+transport.FrameSlack))
	ps.Add("tracing", c.Tracing.Validate())
	ps.Add("log", c.Log.Validate())
	// The node checks that peers can dial listen when it binds it.
	c.Member.Validate(&ps, false)
	c.Membership.GossipKey.Validate(&ps)
	c.Limits.LPLimit.Validate(&ps)
	if c.Admin != "off" {
		if _, _, err := net.SplitHostPort(c.Admin); err != nil {
			bad("admin", "%q is not host:port or \"off\": %v", c.Admin, err)
		}
	}
	if c.Workers < 0 {
		bad("workers", "%d is negative", c.Workers)
	}
	if c.Queue < 0 {
		bad("queue", "%d is negative", c.Queue)
	}
	names := make([]string, 0, len(c.Components))
	for n := range c.Components {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if !abi.ValidName(n) {
			bad("components."+n, "%q is not a valid component name", n)
		}
		if c.Components[n] == "" {
			bad("components."+n, "empty module path")
		}
	}
	c.validateScheduling(bad)
	c.validateLimits(bad)
	c.validateInstall(bad)
	ps.Add("kv", c.KV.Validate("kv"))
	return ps.Err()
}

// validateScheduling checks [scheduler] and [membership].
func (c Config) validateScheduling(bad func(key, format string, args ...any)) {
	s := c.Scheduler
	if _, err := sched.New(s.Policy); err != nil {
		bad("scheduler.policy", "%v", err)
	}
	if s.OverloadRatio < 1 {
		bad("scheduler.overload_ratio", "%v is below 1", s.OverloadRatio)
	}
	if s.OverloadMin < 0 {
		bad("scheduler.overload_min", "%v is negative", s.OverloadMin)
	}
	if s.StaleAfter <= 0 {
		bad("scheduler.stale_after", "%v is not positive", s.StaleAfter)
	}
	if s.Attempts < 1 {
		bad("scheduler.attempts", "%d is below 1", s.Attempts)
	}
	if s.CPUWeight < 0 || s.CPUWeight > 1 {
		bad("scheduler.cpu_weight", "%v is outside [0, 1]", s.CPUWeight)
	}
	m := c.Membership
	for key, d := range map[string]time.Duration{
		"membership.report_interval": m.ReportInterval, "membership.probe_interval": m.ProbeInterval,
		"membership.probe_timeout": m.ProbeTimeout, "membership.gossip_interval": m.GossipInterval,
	} {
		if d <= 0 {
			bad(key, "%v is not positive", d)
		}
	}
	if m.ReportInterval > 0 && s.StaleAfter > 0 && s.StaleAfter < 2*m.ReportInterval {
		bad("scheduler.stale_after", "%v is under twice membership.report_interval (%v): one lost report would drop every peer", s.StaleAfter, m.ReportInterval)
	}
	if m.SuspicionMult < 1 {
		bad("membership.suspicion_mult", "%d is below 1", m.SuspicionMult)
	}
}

// validateLimits checks [limits] against the ABI's guarantees.
func (c Config) validateLimits(bad func(key, format string, args ...any)) {
	l := c.Limits
	floor := func(key string, got, min int) {
		if got < min {
			bad("limits."+key, "%d is below the ABI's guarantee of %d", got, min)
		}
	}
	if l.StepTimeout < time.Second {
		bad("limits.step_timeout", "%v is below the ABI's guarantee of 1s", l.StepTimeout)
	}
	floor("memory_pages", int(l.MemoryPages), 1024)
	if l.MemoryPages > 65536 {
		bad("limits.memory_pages", "%d exceeds 65536 (4 GiB, all of wasm32)", l.MemoryPages)
	}
	floor("max_input", l.MaxInput, abi.MaxInput)
	floor("max_cont", l.MaxCont, abi.MaxCont)
	floor("max_entries", l.MaxEntries, abi.MaxEntries)
	floor("max_depth", l.MaxDepth, abi.MaxDepth)
	for _, n := range l.FreshInstances {
		if !abi.ValidName(n) {
			bad("limits.fresh_instances", "%q is not a valid component name", n)
		}
	}
	if l.MaxTrace < 0 {
		bad("limits.max_trace", "%d is negative", l.MaxTrace)
	}
}

// ConfigError is a problem with a config file: where it is and what. Node
// and gateway configs share it.
type ConfigError = tomlconf.Error

// LoadConfig reads the TOML file at path strictly: an unknown key, a value of
// the wrong type or an invalid value is an error naming the file, the line
// (when it can be found) and the key. Relative file paths in the config
// (components, tls, data_dir) are resolved against the file's directory.
func LoadConfig(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("read config: %w", err)
	}
	return ParseConfig(path, data)
}

// ParseConfig is LoadConfig on bytes already read; name is used in errors
// and to resolve relative paths.
func ParseConfig(name string, data []byte) (Config, error) {
	c := DefaultConfig()
	if err := tomlconf.Load(name, data, &c, func() error { return c.Validate() }); err != nil {
		return Config{}, err
	}
	dir, err := filepath.Abs(filepath.Dir(name))
	if err != nil {
		return Config{}, fmt.Errorf("config %s: %w", name, err)
	}
	c.resolve(dir)
	return c, nil
}

// CheckFiles reports at once every file c names (components, [tls],
// admin_token_file) that cannot be read, each with the line of path, the
// config file c was loaded from. A node refuses to start on any of them.
func (c Config) CheckFiles(path string) error {
	data, _ := os.ReadFile(path) // for line numbers only
	files := []tomlconf.NamedFile{{Key: "tls.ca", Path: c.TLS.CA}, {Key: "tls.cert", Path: c.TLS.Cert},
		{Key: "tls.key", Path: c.TLS.Key}, {Key: "admin_token_file", Path: c.AdminTokenFile}}
	names := make([]string, 0, len(c.Components))
	for n := range c.Components {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		files = append(files, tomlconf.NamedFile{Key: "components." + n, Path: c.Components[n]})
	}
	return tomlconf.CheckFiles(path, data, files)
}

// resolve makes the config's file paths relative to dir absolute.
func (c *Config) resolve(dir string) {
	abs := func(p string) string {
		if p == "" || filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(dir, p)
	}
	for n, p := range c.Components {
		c.Components[n] = abs(p)
	}
	c.TLS.CA, c.TLS.Cert, c.TLS.Key = abs(c.TLS.CA), abs(c.TLS.Cert), abs(c.TLS.Key)
	c.DataDir = abs(c.DataDir)
	c.AdminTokenFile = abs(c.AdminTokenFile)
}
