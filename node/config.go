package node

import (
	"errors"
	"fmt"
	"github.com/tsubame-rt/tsubame/internal/mesh/transport"
	"github.com/tsubame-rt/tsubame/node/blob"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/tsubame-rt/tsubame/abi"
	"github.com/tsubame-rt/tsubame/internal/mesh/cluster"
	"github.com/tsubame-rt/tsubame/internal/mesh/sched"
	"github.com/tsubame-rt/tsubame/internal/tomlconf"
	"github.com/tsubame-rt/tsubame/lp"
	"github.com/tsubame-rt/tsubame/node/kv"
)

// Config is a node's configuration, as read from TOML by LoadConfig. Every
// field's default is in DefaultConfig and docs/config.md.
type Config struct {
	// Name identifies the node in the cluster and in LP traces; it must be
	// its certificate's name. Default: the certificate's name.
	Name string `toml:"name"`
	// Listen is the QUIC address LPs arrive on.
	Listen string `toml:"listen"`
	// Gossip is the membership (memberlist) address, UDP and TCP.
	Gossip string `toml:"gossip"`
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
	// Seeds are gossip addresses of members to join through.
	Seeds []string `toml:"seeds"`
	// Components maps a component name to the module file loaded at start.
	Components map[string]string `toml:"components"`

	Scheduler  SchedulerConfig  `toml:"scheduler"`
	Membership MembershipConfig `toml:"membership"`
	TLS        TLSConfig        `toml:"tls"`
	Limits     LimitsConfig     `toml:"limits"`
	Modules    ModulesConfig    `toml:"modules"`
	Autogrow   AutogrowConfig   `toml:"autogrow"`
	// Blobs: large inputs and replies by reference (node/blob,
	// docs/config.md [blobs]).
	Blobs blob.Config `toml:"blobs"`
	// KV is the key-value capability: backends, buckets, grants (package
	// node/kv, docs/kv.md).
	KV kv.Config `toml:"kv"`
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
	// Key, base64 of 16, 24 or 32 bytes, encrypts gossip; every member
	// needs the same one. Default: none.
	Key string `toml:"key"`
}

// TLSConfig names the PEM files of the cluster CA and this node's certificate.
type TLSConfig struct {
	CA   string `toml:"ca"`
	Cert string `toml:"cert"`
	Key  string `toml:"key"`
}

// LimitsConfig bounds what one step and one LP may use. Values below the
// ABI's guarantees (abi/ABI.md §5) are refused.
type LimitsConfig struct {
	StepTimeout time.Duration `toml:"step_timeout"`
	MemoryPages uint32        `toml:"memory_pages"`
	MaxLPBytes  int           `toml:"max_lp_bytes"`
	MaxInput    int           `toml:"max_input"`
	MaxCont     int           `toml:"max_cont"`
	MaxEntries  int           `toml:"max_entries"`
	MaxDepth    int           `toml:"max_depth"`
	MaxTrace    int           `toml:"max_trace"`
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
		Listen:     "127.0.0.1:7450",
		Gossip:     "127.0.0.1:7946",
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
			MaxLPBytes:  lp.DefaultLimits.MaxTotal,
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
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
	}
	if err := c.Blobs.Validate(c.Limits.MaxLPBytes + transport.FrameSlack); err != nil {
		errs = append(errs, err)
	}
	if c.Name != "" && !abi.ValidName(c.Name) {
		bad("name", "%q is not a valid name (1-64 ASCII letters, digits, '_', '-', '.', starting with a letter)", c.Name)
	}
	for key, addr := range map[string]string{"listen": c.Listen, "gossip": c.Gossip} {
		if _, _, err := net.SplitHostPort(addr); err != nil {
			bad(key, "%q is not host:port: %v", addr, err)
		}
	}
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
	if _, err := tomlconf.SecretKey(m.Key); err != nil {
		bad("membership.key", "%v", err)
	}
	t := c.TLS
	if (t.CA == "") != (t.Cert == "") || (t.CA == "") != (t.Key == "") {
		bad("tls", "ca, cert and key go together (set all three or none)")
	}
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
	floor("max_lp_bytes", l.MaxLPBytes, 2*abi.MaxInput)
	for _, n := range l.FreshInstances {
		if !abi.ValidName(n) {
			bad("limits.fresh_instances", "%q is not a valid component name", n)
		}
	}
	if l.MaxTrace < 0 {
		bad("limits.max_trace", "%d is negative", l.MaxTrace)
	}
	c.validateInstall(bad)
	if err := c.KV.Validate("kv"); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// ConfigError is a problem with a config file: where it is and what.
type ConfigError struct {
	File string
	Line int    // 0 when unknown
	Key  string // dotted key, "" when unknown
	Err  error
}

func (e *ConfigError) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		b.WriteString(":" + strconv.Itoa(e.Line))
	}
	b.WriteString(": ")
	if e.Key != "" {
		b.WriteString(e.Key + ": ")
	}
	b.WriteString(e.Err.Error())
	return b.String()
}

func (e *ConfigError) Unwrap() error { return e.Err }

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
	unknown, err := tomlconf.Decode(data, &c)
	if err != nil {
		line, key, problem := tomlconf.Locate(err)
		return Config{}, &ConfigError{File: name, Line: line, Key: key, Err: problem}
	}
	if len(unknown) > 0 {
		var errs []error
		for _, u := range unknown {
			errs = append(errs, &ConfigError{File: name, Line: u.Line, Key: u.Key, Err: errors.New("unknown key")})
		}
		return Config{}, errors.Join(errs...)
	}
	if err := c.Validate(); err != nil {
		var errs []error
		for _, e := range unjoin(err) {
			key, msg, _ := strings.Cut(e.Error(), ": ")
			errs = append(errs, &ConfigError{File: name, Line: tomlconf.KeyLine(data, key, 0), Key: key, Err: errors.New(msg)})
		}
		return Config{}, errors.Join(errs...)
	}
	dir, err := filepath.Abs(filepath.Dir(name))
	if err != nil {
		return Config{}, fmt.Errorf("config %s: %w", name, err)
	}
	c.resolve(dir)
	return c, nil
}

func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
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
