package gateway

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/tsubame-rt/tsubame/internal/mesh/cluster"
	"github.com/tsubame-rt/tsubame/internal/mesh/sched"
	"github.com/tsubame-rt/tsubame/internal/mesh/transport"
	"github.com/tsubame-rt/tsubame/internal/obs"
	"github.com/tsubame-rt/tsubame/internal/tomlconf"
	"github.com/tsubame-rt/tsubame/lp"
	"github.com/tsubame-rt/tsubame/node/blob"
)

// Config is a gateway's configuration: the TOML file of `tsubame gateway
// --config FILE`, documented key by key in docs/gateway.md and
// testdata/gateway.toml. The cluster-facing keys (name, listen, gossip,
// seeds, [tls], [membership], [limits] max_lp_bytes) mean what they mean in
// a node's file. Start from DefaultConfig.
type Config struct {
	// Member holds the keys every member shares (name, listen, gossip,
	// seeds, [tls]): Name is the gateway's member name and the Origin of
	// its LPs; Listen the QUIC address finished LPs come back to.
	tomlconf.Member
	Membership MembershipConfig `toml:"membership"`
	HTTP       HTTPConfig       `toml:"http"`
	Dispatch   DispatchConfig   `toml:"dispatch"`
	Limits     LimitsConfig     `toml:"limits"`
	// Admin is the admin API: routes at run time, direct calls (admin.go).
	Admin  AdminConfig `toml:"admin"`
	Routes []Route     `toml:"route"`
	// Blobs: a request body or reply larger than blobs.threshold travels by
	// reference, and this gateway keeps the blobs of its LPs (node/blob,
	// docs/config.md [blobs]).
	Blobs blob.Config `toml:"blobs"`
	// Tracing exports request spans over OTLP; off unless an endpoint is
	// set. An incoming traceparent is carried into the LP either way.
	Tracing obs.TraceConfig `toml:"tracing"`
	// Log sets the level and format of the gateway's log (`tsubame gateway`).
	Log obs.LogConfig `toml:"log"`
}

// TLSFiles are the cluster's mutual-TLS PEM files, as `tsubame ca` writes
// them.
type TLSFiles = tomlconf.TLSFiles

// MembershipConfig is what a gateway must share with the nodes' membership:
// the gossip key.
type MembershipConfig struct {
	tomlconf.GossipKey
}

// LimitsConfig is the part of a node's [limits] that a gateway enforces too:
// max_lp_bytes bounds one encoded LP coming back from a node. Set it as the
// nodes do, or replies an LP grew past it are refused.
type LimitsConfig struct {
	tomlconf.LPLimit
}

// HTTPConfig is the client-facing side.
type HTTPConfig struct {
	// Listen is the TCP address; HTTP/3 listens on UDP at the same port.
	Listen string `toml:"listen"`
	// Cert and Key hold the certificate clients see (PEM). Without them the
	// gateway serves plain HTTP/1.1 only.
	Cert string `toml:"cert"`
	Key  string `toml:"key"`
	// TCP is "auto" (HTTPS with HTTP/2 and HTTP/1.1 when a certificate is
	// set, plain HTTP/1.1 otherwise), "https" (require a certificate) or
	// "http" (plain HTTP/1.1 even with a certificate, which then serves
	// HTTP/3 only).
	TCP string `toml:"tcp"`
	// HTTP3 serves HTTP/3 on UDP when a certificate is set.
	HTTP3 bool `toml:"http3"`
	// Limits on clients.
	MaxHeaderBytes    int           `toml:"max_header_bytes"`
	MaxBodyBytes      int64         `toml:"max_body_bytes"`
	ReadHeaderTimeout time.Duration `toml:"read_header_timeout"`
	ReadTimeout       time.Duration `toml:"read_timeout"`
	// WriteTimeout bounds a whole response; 0 means the dispatch budget
	// (attempts x attempt_timeout) plus 10s.
	WriteTimeout time.Duration `toml:"write_timeout"`
	IdleTimeout  time.Duration `toml:"idle_timeout"`
	// ExposeTrace adds a Tsubame-Trace header naming the nodes that ran
	// each step. It reveals node names to clients: for demos and debugging.
	ExposeTrace bool `toml:"expose_trace"`
	// UI serves the live dashboard at /ui/, the gateway's /metrics and its
	// journeys (/v1/journeys) on this address too, to anyone who can reach
	// it: for demos and trusted networks. The admin port serves /metrics
	// and journeys either way.
	UI bool `toml:"ui"`
}

// DispatchConfig says how requests become LPs on nodes.
type DispatchConfig struct {
	// Policy picks the first node among a component's holders.
	Policy string `toml:"policy"`
	// Attempts is how many times a request is sent before giving up.
	Attempts int `toml:"attempts"`
	// AttemptTimeout is how long an attempt waits for its LP to come back.
	AttemptTimeout time.Duration `toml:"attempt_timeout"`
	// MaxInFlight bounds requests in flight; beyond it clients get 503.
	MaxInFlight int `toml:"max_in_flight"`
	// StaleAfter: a node whose last load report is older is no candidate
	// (the nodes' scheduler.stale_after).
	StaleAfter time.Duration `toml:"stale_after"`
}

// DefaultConfig returns a configuration with every default set and no
// routes. Every default and its reason is in docs/gateway.md.
func DefaultConfig() Config {
	return Config{
		Member: tomlconf.Member{Listen: "127.0.0.1:0", Gossip: "127.0.0.1:0"},
		HTTP: HTTPConfig{
			Listen:            "127.0.0.1:8080",
			TCP:               "auto",
			HTTP3:             true,
			MaxHeaderBytes:    64 << 10,
			MaxBodyBytes:      1 << 20,
			ReadHeaderTimeout: 5 * time.Second,
			ReadTimeout:       30 * time.Second,
			IdleTimeout:       2 * time.Minute,
		},
		Dispatch: DispatchConfig{
			Policy:         sched.P2C,
			Attempts:       3,
			AttemptTimeout: 2 * time.Second,
			MaxInFlight:    4096,
			StaleAfter:     cluster.DefaultStaleAfter,
		},
		Limits: LimitsConfig{tomlconf.LPLimit{MaxLPBytes: lp.DefaultLimits.MaxTotal}},
		Admin:  AdminConfig{Listen: defaultAdminListen},
	}
}

// lpLimits are the limits an LP coming back must meet.
func (c Config) lpLimits() lp.Limits {
	l := lp.DefaultLimits
	l.MaxTotal = c.Limits.MaxLPBytes
	return l
}

// maxAttempts bounds resends: each one is a full re-execution.
const maxAttempts = 10

// Validate reports every problem with c at once, each naming its key.
func (c Config) Validate() error {
	var ps tomlconf.Problems
	bad := ps.Bad
	ps.Add("blobs", c.Blobs.Validate(c.Limits.MaxLPBytes+transport.FrameSlack))
	ps.Add("tracing", c.Tracing.Validate())
	ps.Add("log", c.Log.Validate())
	c.Member.Validate(&ps, true)
	c.Membership.Validate(&ps)
	c.Limits.Validate(&ps)
	h := c.HTTP
	if (h.Cert == "") != (h.Key == "") {
		bad("http.cert", "cert and key go together (set both or neither)")
	}
	switch h.TCP {
	case "auto", "http":
	case "https":
		if h.Cert == "" {
			bad("http.tcp", "\"https\" needs http.cert and http.key")
		}
	default:
		bad("http.tcp", "is %q, want \"auto\", \"https\" or \"http\"", h.TCP)
	}
	if h.MaxHeaderBytes < 1024 {
		bad("http.max_header_bytes", "is %d, want at least 1024", h.MaxHeaderBytes)
	}
	if max := int64(max(lp.DefaultLimits.MaxBytes, c.Blobs.Fit(c.Limits.MaxLPBytes+transport.FrameSlack).Largest())); h.MaxBodyBytes < 0 || h.MaxBodyBytes > max {
		bad("http.max_body_bytes", "is %d, want 0 to %d (the largest LP input, inline or as a blob: blobs.max_blob)", h.MaxBodyBytes, max)
	}
	for key, d := range map[string]time.Duration{
		"http.read_header_timeout": h.ReadHeaderTimeout, "http.read_timeout": h.ReadTimeout,
		"http.idle_timeout": h.IdleTimeout, "http.write_timeout": h.WriteTimeout,
	} {
		if d < 0 {
			bad(key, "is negative")
		}
	}
	if h.ReadHeaderTimeout == 0 {
		bad("http.read_header_timeout", "is 0: a slow client could hold a connection forever")
	}
	if _, _, err := net.SplitHostPort(h.Listen); err != nil {
		bad("http.listen", "%q is not host:port: %v", h.Listen, err)
	}
	d := c.Dispatch
	if _, err := sched.New(d.Policy); err != nil {
		bad("dispatch.policy", "%v", err)
	}
	if d.Attempts < 1 || d.Attempts > maxAttempts {
		bad("dispatch.attempts", "is %d, want 1 to %d", d.Attempts, maxAttempts)
	}
	if d.AttemptTimeout <= 0 {
		bad("dispatch.attempt_timeout", "is %s, want more than 0", d.AttemptTimeout)
	}
	if d.MaxInFlight < 1 {
		bad("dispatch.max_in_flight", "is %d, want at least 1", d.MaxInFlight)
	}
	if d.StaleAfter <= 0 {
		bad("dispatch.stale_after", "is %s, want more than 0", d.StaleAfter)
	}
	if len(c.Routes) == 0 && c.Admin.TokenFile == "" {
		bad("route", "no routes: add at least one [[route]] (or turn on [admin] and add routes at run time)")
	}
	c.Admin.validate(bad)
	for i, r := range c.Routes {
		if _, err := compileRoute(i, r); err != nil {
			ps = append(ps, &tomlconf.Problem{Key: "route", Nth: i + 1, Err: err})
		}
	}
	return ps.Err()
}

// LoadConfig reads a gateway TOML file over DefaultConfig. Decoding is
// strict: an unknown key, a value of the wrong type or an invalid value is a
// *tomlconf.Error naming the file, the line and the key, as for a node.
// Relative file paths are taken from the config file's directory.
func LoadConfig(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("read gateway config: %w", err)
	}
	return ParseConfig(path, data)
}

// ParseConfig is LoadConfig on bytes already read; path names the file in
// errors and resolves relative paths.
func ParseConfig(path string, data []byte) (Config, error) {
	c := DefaultConfig()
	dir := filepath.Dir(path)
	err := tomlconf.Load(path, data, &c, func() error {
		for _, p := range []*string{&c.HTTP.Cert, &c.HTTP.Key, &c.TLS.CA, &c.TLS.Cert, &c.TLS.Key, &c.Admin.TokenFile} {
			if *p != "" && !filepath.IsAbs(*p) {
				*p = filepath.Join(dir, *p)
			}
		}
		return c.Validate()
	})
	if err != nil {
		return Config{}, err
	}
	return c, nil
}
