package tomlconf

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/tsubame-rt/tsubame/abi"
)

// Error is a problem with a config file: where it is and what. Node and
// gateway configs both fail with it (joined, one per problem), so a caller
// reads File, Line and Key with errors.As.
type Error struct {
	File string
	Line int    // 0 when unknown
	Key  string // dotted key, "" when unknown
	Err  error
}

// Error reads "FILE:LINE: KEY: problem".
func (e *Error) Error() string {
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

func (e *Error) Unwrap() error { return e.Err }

// Problem is one invalid value found by a config's Validate: the dotted key
// it is under and what is wrong. Nth > 0 points at the nth [[Key]] array
// table, whose Err names that entry itself.
type Problem struct {
	Key string
	Nth int
	Err error
}

func (p *Problem) Error() string {
	if p.Nth > 0 {
		return p.Err.Error()
	}
	return p.Key + ": " + p.Err.Error()
}

func (p *Problem) Unwrap() error { return p.Err }

// Problems collects what a Validate finds, so every problem is reported at
// once.
type Problems []error

// Bad adds a problem with key.
func (ps *Problems) Bad(key, format string, args ...any) {
	*ps = append(*ps, &Problem{Key: key, Err: fmt.Errorf(format, args...)})
}

// Add adds err from a part's own Validate: its *Problems as they are (a
// joined error is taken apart), anything else as a problem with key.
func (ps *Problems) Add(key string, err error) {
	if err == nil {
		return
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			ps.Add(key, e)
		}
		return
	}
	var p *Problem
	if errors.As(err, &p) {
		*ps = append(*ps, p)
		return
	}
	*ps = append(*ps, &Problem{Key: key, Err: err})
}

// Err joins the problems, nil for none.
func (ps Problems) Err() error { return errors.Join(ps...) }

// Load decodes data, the config file name, strictly into cfg over the
// defaults it holds, then runs validate. Every problem comes back as an
// *Error naming the file, the line (when it can be found) and the key,
// joined: an unknown key, a value of the wrong type, or a *Problem from
// validate.
func Load(name string, data []byte, cfg any, validate func() error) error {
	unknown, err := Decode(data, cfg)
	if err != nil {
		line, key, problem := Locate(err)
		return &Error{File: name, Line: line, Key: key, Err: problem}
	}
	if len(unknown) > 0 {
		var errs []error
		for _, u := range unknown {
			errs = append(errs, &Error{File: name, Line: u.Line, Key: u.Key, Err: errors.New("unknown key")})
		}
		return errors.Join(errs...)
	}
	var ps Problems
	ps.Add("", validate())
	var errs []error
	for _, e := range ps {
		p := e.(*Problem)
		ce := &Error{File: name, Line: KeyLine(data, p.Key, p.Nth), Key: p.Key, Err: p.Err}
		if p.Nth > 0 {
			ce.Key = "" // the problem names its entry
		}
		errs = append(errs, ce)
	}
	return errors.Join(errs...)
}

// Member is the cluster-facing part of a member's config that nodes and
// gateways share, declared once and embedded in both: the same keys, the
// same meaning, the same checks.
type Member struct {
	// Name is the member's name; it must be its certificate's. Default:
	// the certificate's common name.
	Name string `toml:"name"`
	// Listen is the QUIC address LPs arrive on (a gateway: finished ones).
	Listen string `toml:"listen"`
	// Gossip is the membership (memberlist) address, UDP and TCP.
	Gossip string `toml:"gossip"`
	// Seeds are gossip addresses of members to join through.
	Seeds []string `toml:"seeds"`
	// TLS names the cluster's mutual-TLS PEM files, as `tsubame ca`
	// writes them.
	TLS TLSFiles `toml:"tls"`
}

// TLSFiles are the cluster CA's and this member's PEM files.
type TLSFiles struct {
	CA   string `toml:"ca"`
	Cert string `toml:"cert"`
	Key  string `toml:"key"`
}

// GossipKey is [membership] key: base64 of 16, 24 or 32 bytes that
// encrypts gossip; every member needs the same one. Default: none.
type GossipKey struct {
	Key string `toml:"key"`
}

// Validate adds m's problems to ps. dialable asks that listen be an address
// peers can dial (a specific IP, not 0.0.0.0).
func (m Member) Validate(ps *Problems, dialable bool) {
	if m.Name != "" && !abi.ValidName(m.Name) {
		ps.Bad("name", "%q is not a valid name (1-64 ASCII letters, digits, '_', '-', '.', starting with a letter)", m.Name)
	}
	for _, a := range []struct{ key, addr string }{{"listen", m.Listen}, {"gossip", m.Gossip}} {
		host, _, err := net.SplitHostPort(a.addr)
		if err != nil {
			ps.Bad(a.key, "%q is not host:port: %v", a.addr, err)
			continue
		}
		if ip := net.ParseIP(host); dialable && a.key == "listen" && (ip == nil || ip.IsUnspecified()) {
			ps.Bad(a.key, "%q is not an address peers can dial: listen on a specific IP address", a.addr)
		}
	}
	t := m.TLS
	if (t.CA == "") != (t.Cert == "") || (t.CA == "") != (t.Key == "") {
		ps.Bad("tls", "ca, cert and key go together (set all three or none)")
	}
}

// Validate adds k's problem, if any, to ps.
func (k GossipKey) Validate(ps *Problems) {
	if _, err := SecretKey(k.Key); err != nil {
		ps.Bad("membership.key", "%v", err)
	}
}

// LPLimit is [limits] max_lp_bytes: the largest encoded LP a member takes
// (nodes and gateways alike; a transport frame may be this plus
// transport.FrameSlack). It must be at least twice abi.MaxInput.
type LPLimit struct {
	MaxLPBytes int `toml:"max_lp_bytes"`
}

// Validate adds l's problem, if any, to ps.
func (l LPLimit) Validate(ps *Problems) {
	if min := 2 * abi.MaxInput; l.MaxLPBytes < min {
		ps.Bad("limits.max_lp_bytes", "%d is below the ABI's guarantee of %d", l.MaxLPBytes, min)
	}
}
