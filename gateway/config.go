package gateway

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/tsubame-rt/tsubame/lp"
	"github.com/tsubame-rt/tsubame/node/sched"
)

// Config is a gateway's configuration: the TOML file of `tsubame gateway
// --config FILE`, documented key by key in docs/gateway.md and
// testdata/gateway.toml. Start from DefaultConfig.
type Config struct {
	// Name is the gateway's member name and the Origin of its LPs. Default:
	// the common name of the cluster certificate.
	Name     string         `toml:"name"`
	HTTP     HTTPConfig     `toml:"http"`
	QUIC     QUICConfig     `toml:"quic"`
	Cluster  ClusterConfig  `toml:"cluster"`
	TLS      TLSFiles       `toml:"tls"`
	Dispatch DispatchConfig `toml:"dispatch"`
	Routes   []Route        `toml:"route"`
}

// HTTPConfig is the client-facing side.
type HTTPConfig struct {
	// Listen is the TCP address; HTTP/3 listens on UDP at the same port.
	Listen string `toml:"listen"`
	// CertFile and KeyFile hold the certificate clients see (PEM). Without
	// them the gateway serves plain HTTP/1.1 only.
	CertFile string `toml:"cert_file"`
	KeyFile  string `toml:"key_file"`
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
}

// QUICConfig is the cluster-facing transport.
type QUICConfig struct {
	Listen string `toml:"listen"` // UDP address LPs come back to
}

// ClusterConfig is membership.
type ClusterConfig struct {
	Bind  string   `toml:"bind"`  // gossip address
	Seeds []string `toml:"seeds"` // gossip addresses of nodes to join through
}

// TLSFiles are the cluster's mutual-TLS files (PEM), as `tsubame ca` writes
// them.
type TLSFiles struct {
	CAFile   string `toml:"ca_file"`
	CertFile string `toml:"cert_file"`
	KeyFile  string `toml:"key_file"`
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
}

// DefaultConfig returns a configuration with every default set and no
// routes. Every default and its reason is in docs/gateway.md.
func DefaultConfig() Config {
	return Config{
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
		QUIC:    QUICConfig{Listen: "127.0.0.1:0"},
		Cluster: ClusterConfig{Bind: "127.0.0.1:0"},
		Dispatch: DispatchConfig{
			Policy:         sched.P2C,
			Attempts:       3,
			AttemptTimeout: 2 * time.Second,
			MaxInFlight:    4096,
		},
	}
}

// maxAttempts bounds resends: each one is a full re-execution.
const maxAttempts = 10

// Validate checks c, naming the key at fault.
func (c Config) Validate() error {
	var errs []error
	bad := func(key, format string, a ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, a...)))
	}
	h := c.HTTP
	if h.Listen == "" {
		bad("http.listen", "is empty")
	}
	if (h.CertFile == "") != (h.KeyFile == "") {
		bad("http.cert_file", "cert_file and key_file must be set together")
	}
	switch h.TCP {
	case "auto", "http":
	case "https":
		if h.CertFile == "" {
			bad("http.tcp", "\"https\" needs http.cert_file and http.key_file")
		}
	default:
		bad("http.tcp", "is %q, want \"auto\", \"https\" or \"http\"", h.TCP)
	}
	if h.MaxHeaderBytes < 1024 {
		bad("http.max_header_bytes", "is %d, want at least 1024", h.MaxHeaderBytes)
	}
	if max := int64(lp.DefaultLimits.MaxBytes); h.MaxBodyBytes < 0 || h.MaxBodyBytes > max {
		bad("http.max_body_bytes", "is %d, want 0 to %d (the largest LP input)", h.MaxBodyBytes, max)
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
	if c.QUIC.Listen == "" {
		bad("quic.listen", "is empty")
	}
	if c.Cluster.Bind == "" {
		bad("cluster.bind", "is empty")
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
	if len(c.Routes) == 0 {
		bad("route", "no routes: add at least one [[route]]")
	}
	for i, r := range c.Routes {
		if _, err := compileRoute(i, r); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// LoadConfig reads a gateway TOML file over DefaultConfig. Decoding is
// strict: an unknown key or a value of the wrong type is an error naming the
// file, the line and the key. Relative file paths are taken from the
// config file's directory.
func LoadConfig(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("read gateway config: %w", err)
	}
	c := DefaultConfig()
	md, err := toml.Decode(string(data), &c)
	if err != nil {
		return Config{}, fmt.Errorf("%s: %w", path, err)
	}
	if un := md.Undecoded(); len(un) > 0 {
		var errs []error
		for _, k := range un {
			errs = append(errs, fmt.Errorf("%s:%d: unknown key %q", path, keyLine(data, k), k.String()))
		}
		return Config{}, errors.Join(errs...)
	}
	dir := filepath.Dir(path)
	for _, p := range []*string{&c.HTTP.CertFile, &c.HTTP.KeyFile, &c.TLS.CAFile, &c.TLS.CertFile, &c.TLS.KeyFile} {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(dir, *p)
		}
	}
	if err := c.Validate(); err != nil {
		return Config{}, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// keyLine finds the line where a TOML key is set, tracking [table] and
// [[array]] headers; 0 if not found. BurntSushi/toml keeps key positions
// private, and an error without a line is much harder to act on.
func keyLine(data []byte, key toml.Key) int {
	want := key.String()
	table := ""
	s := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; s.Scan(); n++ {
		line := strings.TrimSpace(s.Text())
		switch {
		case strings.HasPrefix(line, "[["):
			table = strings.TrimSpace(strings.Trim(strings.SplitN(line, "]]", 2)[0], "["))
			if table == want {
				return n
			}
		case strings.HasPrefix(line, "["):
			table = strings.TrimSpace(strings.Trim(strings.SplitN(line, "]", 2)[0], "["))
			if table == want {
				return n
			}
		default:
			k, _, ok := strings.Cut(line, "=")
			if !ok {
				continue
			}
			k = strings.Trim(strings.TrimSpace(k), `"'`)
			if table != "" {
				k = table + "." + k
			}
			if k == want || strings.HasPrefix(want, k+".") {
				return n
			}
		}
	}
	return 0
}
