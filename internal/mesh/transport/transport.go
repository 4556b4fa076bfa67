// Package transport moves LPs between Tsubame nodes over QUIC with mutual
// TLS: Send migrates a Process to a peer and returns once the peer owns it;
// a Handler receives the Processes peers send here. Request and a
// RequestHandler carry the cluster's other exchanges (a module fetched by
// hash, an install order) over the same connections.
//
// One UDP socket (one quic.Transport) per node serves both directions, and
// one QUIC connection per peer carries every migration to it, on a small pool
// of long-lived streams. A peer's identity is the node name in its verified
// certificate. The wire protocol is described in frame.go and PROTOCOL.md.
//
// The package never decides where an LP goes, never retries a send on its
// own (a failed send may or may not have been delivered; the caller decides,
// and the LP's ID lets a receiver recognise a duplicate), and never runs an
// LP.
package transport

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/tsubame-rt/tsubame/internal/mesh/pki"
	"github.com/tsubame-rt/tsubame/lp"
)

// ALPN is the application protocol this package speaks. The version is in
// it: a peer that speaks another version fails the TLS handshake with
// no_application_protocol, before a single frame is misread.
const ALPN = "tsubame/1"

// FrameSlack is what a frame needs beyond the LP it carries: its header, and
// room for a refusal's text. A member that bounds its LPs at Limits.MaxTotal
// sets MaxFrame to that plus FrameSlack.
const FrameSlack = 64 << 10

// Defaults for Config's zero fields.
const (
	DefaultMaxFrame = 32 << 20
	DefaultTimeout  = 5 * time.Second
	// DefaultMaxIdleStreams: enough for every concurrent sender of a busy
	// node to find a warm stream (the benchmarks use 64 goroutines).
	DefaultMaxIdleStreams = 64
)

// QUIC settings, tuned for a LAN.
const (
	// maxIncomingStreams bounds the bidirectional streams a peer may have
	// open at once. quic-go's default (100) throttles a busy peer: every
	// concurrent migration holds a stream, and each pooled idle stream
	// counts too.
	maxIncomingStreams = 1024
	// keepAlivePeriod keeps idle connections open between bursts (a new
	// handshake costs ~1.3 ms, 30 hops' worth) and notices a vanished peer.
	keepAlivePeriod = 5 * time.Second
	// maxIdleTimeout closes a connection whose peer has been silent this
	// long. With keep-alives every 5 s only a dead or partitioned peer is
	// silent for 15 s; memberlist usually declares it dead sooner.
	maxIdleTimeout = 15 * time.Second
)

// Handler receives the LPs peers migrate to this node.
type Handler interface {
	// AcceptLP takes ownership of p, a freshly decoded Process that the
	// handler may keep: its bytes are not reused by the transport.
	// Returning nil acknowledges; a *Refusal refuses with a reason. It must
	// not block for long (queue the LP; refuse Overloaded when full): the
	// sender waits for the answer, at most its Timeout. ctx ends when the
	// sender gives up or the connection closes.
	AcceptLP(ctx context.Context, from string, p *lp.Process) error
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, from string, p *lp.Process) error

// AcceptLP calls f.
func (f HandlerFunc) AcceptLP(ctx context.Context, from string, p *lp.Process) error {
	return f(ctx, from, p)
}

// Config configures a Transport. Zero fields take the defaults.
type Config struct {
	// Listen is the UDP address to bind, such as "127.0.0.1:0".
	Listen string
	// TLS is the node's mutual-TLS configuration under the cluster CA
	// (pki.TLSConfig). The transport sets NextProtos on its own copy.
	TLS *tls.Config
	// Handler receives LPs. Nil refuses every LP with ShuttingDown (a
	// send-only transport).
	Handler Handler
	// Requests answers REQUEST frames (request.go). Nil answers every
	// request with StatusUnsupported.
	Requests RequestHandler
	// Logger; nil discards.
	Logger *slog.Logger
	// MaxFrame bounds one incoming frame (default DefaultMaxFrame, 32 MiB).
	MaxFrame int
	// Limits bounds incoming LPs (zero fields: lp.DefaultLimits).
	Limits lp.Limits
	// Timeout bounds every stream operation: a dial, writing a frame,
	// waiting for the answer, answering (default DefaultTimeout, 5 s). A
	// peer that does not answer within it is treated as gone: its
	// connection is closed, and the next Send redials.
	Timeout time.Duration
	// FrameMemory bounds the bytes of large incoming frames (over 64 KiB)
	// held at once by this transport, FrameMemoryPerConn those held for one
	// peer connection (defaults DefaultFrameMemory, 256 MiB, and
	// DefaultFrameMemoryPerConn, 64 MiB; each at least MaxFrame). A frame
	// that does not fit within 100ms is refused with ERROR ErrMemory
	// before it is read (budget.go).
	FrameMemory, FrameMemoryPerConn int
	// MaxIdleStreams is how many idle streams per peer connection are kept
	// for reuse (default DefaultMaxIdleStreams). Negative: no reuse, a new
	// stream for every exchange (slower; see RATIONALE.md).
	MaxIdleStreams int
}

// Transport sends LPs to peers and receives LPs from them.
type Transport struct {
	cfg       Config
	log       *slog.Logger
	name      string
	udp       *net.UDPConn
	qt        *quic.Transport
	ln        *quic.Listener
	serverTLS *tls.Config
	clientTLS *tls.Config
	qconf     *quic.Config

	// ctx ends when the transport closes.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mem *budget // frame memory (budget.go)

	legacyWarned sync.Map // peer names whose role-less certificate was warned about

	mu     sync.Mutex
	closed bool
	peers  map[string]*peer   // by address as callers and remote addresses spell it
	conns  map[*conn]struct{} // every live connection, for Close
}

// Listen binds c.Listen and starts accepting connections. The transport runs
// until Close; ctx is not kept (binding a UDP socket does not block).
func Listen(ctx context.Context, c Config) (*Transport, error) {
	if c.TLS == nil {
		return nil, errors.New("transport: no TLS config (every connection is mutual TLS under the cluster CA)")
	}
	name, err := pki.LocalName(c.TLS)
	if err != nil {
		return nil, fmt.Errorf("transport: %w", err)
	}
	if c.MaxFrame <= 0 {
		c.MaxFrame = DefaultMaxFrame
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	if c.FrameMemory <= 0 {
		c.FrameMemory = DefaultFrameMemory
	}
	if c.FrameMemoryPerConn <= 0 {
		c.FrameMemoryPerConn = DefaultFrameMemoryPerConn
	}
	c.FrameMemoryPerConn = max(c.FrameMemoryPerConn, c.MaxFrame)
	c.FrameMemory = max(c.FrameMemory, c.FrameMemoryPerConn)
	if c.MaxIdleStreams == 0 {
		c.MaxIdleStreams = DefaultMaxIdleStreams
	}
	log := c.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("transport", name)
	ua, err := net.ResolveUDPAddr("udp", c.Listen)
	if err != nil {
		return nil, fmt.Errorf("transport: listen address %q: %w", c.Listen, err)
	}
	udp, err := net.ListenUDP("udp", ua)
	if err != nil {
		return nil, fmt.Errorf("transport: %w", err)
	}
	qt := &quic.Transport{Conn: udp, StatelessResetKey: resetKey(c.TLS)}
	t := &Transport{
		cfg:   c,
		log:   log,
		name:  name,
		udp:   udp,
		qt:    qt,
		peers: map[string]*peer{},
		conns: map[*conn]struct{}{},
		mem:   newBudget(c.FrameMemory, c.FrameMemoryPerConn),
		qconf: &quic.Config{
			HandshakeIdleTimeout:  c.Timeout,
			MaxIdleTimeout:        maxIdleTimeout,
			KeepAlivePeriod:       keepAlivePeriod,
			MaxIncomingStreams:    maxIncomingStreams,
			MaxIncomingUniStreams: -1, // the protocol has no unidirectional streams
		},
	}
	t.serverTLS = c.TLS.Clone()
	t.serverTLS.NextProtos = []string{ALPN}
	t.clientTLS = t.serverTLS.Clone()
	if t.ln, err = qt.Listen(t.serverTLS, t.qconf); err != nil {
		qt.Close()
		udp.Close()
		return nil, fmt.Errorf("transport: %w", err)
	}
	t.ctx, t.cancel = context.WithCancel(context.Background())
	t.wg.Add(1)
	go t.acceptLoop()
	log.Debug("transport listening", "addr", t.Addr(), "alpn", ALPN)
	return t, nil
}

// resetKey derives the QUIC stateless-reset key from the node's private key,
// so that a node restarted with the same certificate resets the connections
// its previous run had: peers then redial at once instead of waiting for
// their idle timeout. Nil (resets disabled) if the key cannot be marshalled.
func resetKey(c *tls.Config) *quic.StatelessResetKey {
	if len(c.Certificates) == 0 {
		return nil
	}
	der, err := x509.MarshalPKCS8PrivateKey(c.Certificates[0].PrivateKey)
	if err != nil {
		return nil
	}
	k := quic.StatelessResetKey(sha256.Sum256(append([]byte("tsubame stateless reset key\x00"), der...)))
	return &k
}

// Addr returns the UDP address the transport is bound to.
func (t *Transport) Addr() string { return t.udp.LocalAddr().String() }

// Name returns this node's name: the Common Name of its certificate.
func (t *Transport) Name() string { return t.name }

// Close closes every connection and the socket. Sends in progress fail;
// handlers in progress see their context canceled.
func (t *Transport) Close() error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil
	}
	t.closed = true
	conns := make([]*conn, 0, len(t.conns))
	for c := range t.conns {
		conns = append(conns, c)
	}
	t.mu.Unlock()
	t.cancel()
	err := t.ln.Close()
	for _, c := range conns {
		c.close(codeShutdown, t.name+" is shutting down")
	}
	if e := t.qt.Close(); err == nil {
		err = e
	}
	if e := t.udp.Close(); err == nil && !errors.Is(e, net.ErrClosed) {
		err = e
	}
	t.wg.Wait()
	if errors.Is(err, net.ErrClosed) || errors.Is(err, quic.ErrServerClosed) {
		err = nil
	}
	return err
}

// RefuseReason says why a peer did not take an LP.
type RefuseReason uint8

// Refusal reasons. ONLY APPEND: the values are on the wire.
const (
	// Other: the handler failed with an error that is not a *Refusal.
	Other            RefuseReason = 0
	UnknownComponent RefuseReason = 1 // the active entry's component is not held there
	Overloaded       RefuseReason = 2 // the peer's run queue is full
	Malformed        RefuseReason = 3 // the LP decodes but is not one the peer can run
	ShuttingDown     RefuseReason = 4 // the peer is draining
)

func (r RefuseReason) String() string {
	switch r {
	case Other:
		return "other"
	case UnknownComponent:
		return "unknown component"
	case Overloaded:
		return "overloaded"
	case Malformed:
		return "malformed"
	case ShuttingDown:
		return "shutting down"
	}
	return fmt.Sprintf("reason(%d)", uint8(r))
}

// Refusal is a peer's refusal of an LP: the peer does not own it, and the
// sender still does. Handlers return it; Send returns it (errors.As).
type Refusal struct {
	Reason RefuseReason
	Detail string
}

func (r *Refusal) Error() string {
	if r.Detail == "" {
		return "refused: " + r.Reason.String()
	}
	return "refused: " + r.Reason.String() + ": " + r.Detail
}

// ProtocolError is a peer's ERROR frame: it could not make sense of what was
// sent to it (which points at a bug or a version mismatch, not at the LP's
// content being unwelcome). The peer does not own the LP.
type ProtocolError struct {
	Code ErrorCode
	Msg  string
}

func (e *ProtocolError) Error() string {
	return "peer reported " + e.Code.String() + ": " + e.Msg
}
