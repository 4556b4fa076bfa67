package transport

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/tsubame-rt/tsubame/internal/mesh/pki"
	"github.com/tsubame-rt/tsubame/lp"
)

// Application error codes for connections and streams.
const (
	codeShutdown quic.ApplicationErrorCode = 1 // the closing side is shutting down
	codeTimeout  quic.ApplicationErrorCode = 2 // the peer did not answer within Timeout
	codeBroken   quic.ApplicationErrorCode = 3 // this side found the connection unusable

	codeDiscard   quic.StreamErrorCode = 1 // the stream's state is unknown; dropped
	codeStreamEnd quic.StreamErrorCode = 2 // an ERROR frame ended the stream
)

// alertNoApplicationProtocol is TLS alert 120, which a server sends when the
// client offers no ALPN protocol it speaks; QUIC carries TLS alerts as
// transport error 0x100+alert.
const alertNoApplicationProtocol = 0x100 + 120

// conn is one QUIC connection to a peer, dialled or accepted; either side
// opens streams on it.
type conn struct {
	qc   *quic.Conn
	peer string   // node name from the verified certificate
	role pki.Role // what the certificate allows (roles.go)
	addr string   // the peer's UDP address

	// broken is set when an exchange saw the connection fail: quic-go may
	// report the failure on a stream a moment before the connection's
	// context ends, and the next Send must redial, not reuse it.
	broken atomic.Bool

	mu   sync.Mutex
	idle []*stream // LIFO, so the warmest streams are reused first

	frameMem int64 // bytes of large incoming frames reserved (budget.go; guarded by the budget's lock)
}

func (c *conn) alive() bool { return !c.broken.Load() && c.qc.Context().Err() == nil }

func (c *conn) close(code quic.ApplicationErrorCode, msg string) {
	_ = c.qc.CloseWithError(code, msg)
}

// fail retires a connection an exchange found unusable.
func (c *conn) fail(code quic.ApplicationErrorCode, msg string) {
	c.broken.Store(true)
	c.close(code, msg)
}

// stream is one bidirectional stream and its reader, reused for exchange
// after exchange.
type stream struct {
	qs      *quic.Stream
	r       *bufio.Reader
	w       *watchdog // bounds each exchange
	scratch [64]byte  // holds an answer's payload, which is almost always small
}

// discard drops a stream whose state is unknown, both directions at once.
func (s *stream) discard() {
	s.qs.CancelWrite(codeDiscard)
	s.qs.CancelRead(codeDiscard)
}

// peer is what a Transport knows about one address: the connection to use
// and the dial in progress, so that concurrent senders dial only once.
type peer struct {
	mu      sync.Mutex
	c       *conn
	pending *dial
}

type dial struct {
	done chan struct{}
	c    *conn
	err  error
}

// connTo returns a live connection to addr, dialling if there is none.
func (t *Transport) connTo(ctx context.Context, addr string) (*conn, error) {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil, net.ErrClosed
	}
	p := t.peers[addr]
	if p == nil {
		p = &peer{}
		t.peers[addr] = p
	}
	// Lock p before letting go of t.mu, so forget cannot drop p between the
	// two (the lock order is t.mu, then p.mu).
	p.mu.Lock()
	t.mu.Unlock()
	if p.c != nil && p.c.alive() {
		c := p.c
		p.mu.Unlock()
		return c, nil
	}
	d := p.pending
	if d == nil {
		// The dial runs on its own goroutine, bounded by Timeout and the
		// transport's life, so that one caller giving up does not fail
		// the others waiting for the same connection.
		d = &dial{done: make(chan struct{})}
		p.pending = d
		t.wg.Add(1)
		go func() {
			defer t.wg.Done()
			d.c, d.err = t.dial(addr)
			p.mu.Lock()
			p.pending = nil
			if d.err == nil {
				p.c = d.c
			}
			p.mu.Unlock()
			close(d.done)
		}()
	}
	p.mu.Unlock()
	select {
	case <-d.done:
		return d.c, d.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (t *Transport) dial(addr string) (*conn, error) {
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, err
	}
	tc := t.clientTLS
	if host, _, err := net.SplitHostPort(addr); err == nil && net.ParseIP(host) == nil {
		// Verify a host name as the caller spelled it, not the address it
		// resolved to.
		tc = tc.Clone()
		tc.ServerName = host
	}
	ctx, cancel := context.WithTimeout(t.ctx, t.cfg.Timeout)
	defer cancel()
	qc, err := t.qt.Dial(ctx, ua, tc, t.qconf)
	if err != nil {
		var te *quic.TransportError
		if errors.As(err, &te) && te.ErrorCode == alertNoApplicationProtocol {
			return nil, fmt.Errorf("peer does not speak %s (it refused the ALPN protocol; a different Tsubame protocol version?): %w", ALPN, err)
		}
		if errors.Is(err, context.DeadlineExceeded) {
			return nil, fmt.Errorf("dial: no handshake within %v: %w", t.cfg.Timeout, err)
		}
		return nil, fmt.Errorf("dial: %w", err)
	}
	c, err := t.track(qc)
	if err != nil {
		return nil, err
	}
	t.log.Debug("connected", "peer", c.peer, "addr", addr)
	return c, nil
}

// track registers a connection that finished its handshake and starts
// serving the streams its peer opens on it.
func (t *Transport) track(qc *quic.Conn) (*conn, error) {
	name, err := pki.PeerName(qc.ConnectionState().TLS)
	if err != nil {
		_ = qc.CloseWithError(codeShutdown, err.Error())
		return nil, err
	}
	role, _ := pki.PeerRole(qc.ConnectionState().TLS)
	if _, warned := t.legacyWarned.LoadOrStore(name, role == pki.RoleLegacy); role == pki.RoleLegacy && !warned {
		t.log.Warn("peer presents a certificate without a role (issued before roles): it keeps every right of a node; reissue it with `tsubame ca issue --role node|gateway|operator`",
			"peer", name)
	}
	c := &conn{qc: qc, peer: name, role: role, addr: qc.RemoteAddr().String()}
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		c.close(codeShutdown, t.name+" is shutting down")
		return nil, net.ErrClosed
	}
	t.conns[c] = struct{}{}
	t.wg.Add(1)
	t.mu.Unlock()
	go t.serveConn(c)
	return c, nil
}

// acceptLoop accepts connections until the transport closes.
func (t *Transport) acceptLoop() {
	defer t.wg.Done()
	for {
		qc, err := t.ln.Accept(t.ctx)
		if err != nil {
			return
		}
		c, err := t.track(qc)
		if err != nil {
			continue
		}
		t.log.Debug("accepted", "peer", c.peer, "addr", c.addr)
		// The peer dials from the socket it listens on, so its remote
		// address is where it accepts LPs: sends to it reuse this
		// connection instead of making a second one.
		t.mu.Lock()
		p := t.peers[c.addr]
		if p == nil {
			p = &peer{}
			t.peers[c.addr] = p
		}
		p.mu.Lock()
		t.mu.Unlock()
		if p.c == nil || !p.c.alive() {
			p.c = c
		}
		p.mu.Unlock()
	}
}

// serveConn accepts the streams the peer opens on c until c closes, then
// forgets c.
func (t *Transport) serveConn(c *conn) {
	defer t.wg.Done()
	for {
		qs, err := c.qc.AcceptStream(t.ctx)
		if err != nil {
			break
		}
		t.wg.Add(1)
		go t.serveStream(c, qs)
	}
	c.close(codeShutdown, "")
	t.forget(c)
	c.mu.Lock()
	idle := c.idle
	c.idle = nil
	c.mu.Unlock()
	for _, s := range idle {
		s.discard()
	}
}

// forget drops a closed connection and the peer entries that only pointed
// at it, so neither the connection nor the address book outlives its use.
func (t *Transport) forget(c *conn) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.conns, c)
	for addr, p := range t.peers {
		p.mu.Lock()
		if p.c == c {
			p.c = nil
		}
		if p.c == nil && p.pending == nil {
			delete(t.peers, addr)
		}
		p.mu.Unlock()
	}
}

// serveStream answers the requests the peer writes on one stream, one after
// another, until the peer ends the stream or breaks the protocol.
func (t *Transport) serveStream(c *conn, qs *quic.Stream) {
	defer t.wg.Done()
	r := bufio.NewReaderSize(qs, 4<<10)
	w := newWatchdog(qs)
	var out []byte
	for {
		// Between exchanges a pooled stream waits without a deadline:
		// the connection's keep-alive and idle timeout bound it.
		if _, err := r.Peek(1); err != nil {
			if !errors.Is(err, io.EOF) {
				qs.CancelRead(codeDiscard)
			}
			qs.Close()
			return
		}
		w.arm(context.Background(), t.cfg.Timeout)
		out = t.answer(qs.Context(), c, r, out[:0])
		if frameType(out[0]) == frameResponse {
			// A request handler may have taken a while (an install
			// compiles a module): the answer gets its own bound.
			w.disarm(nil)
			w.arm(context.Background(), t.cfg.Timeout)
		}
		_, err := qs.Write(out)
		w.disarm(nil)
		if err != nil {
			qs.CancelRead(codeDiscard)
			qs.CancelWrite(codeDiscard)
			return
		}
		if frameType(out[0]) == frameError {
			qs.CancelRead(codeStreamEnd)
			qs.Close()
			return
		}
		if cap(out) > maxPooledBuf {
			out = nil // a module sent in a RESPONSE: do not pin it
		}
	}
}

// answer reads one request frame and appends the response frame to out.
func (t *Transport) answer(ctx context.Context, c *conn, r *bufio.Reader, out []byte) []byte {
	typ, n, err := readHeader(r, t.cfg.MaxFrame)
	if err != nil {
		return t.errorFrame(c, out, err)
	}
	if typ == frameRequest {
		return t.answerRequest(ctx, c, r, n, out)
	}
	if typ != frameLP {
		return t.errorFrame(c, out, &wireError{ErrFrameType, fmt.Sprintf("%s is not a request this node takes", typ)})
	}
	if !allowedLP(c.role) {
		// Refused after the payload is skipped, so the stream stays in step.
		if _, err := io.CopyN(io.Discard, r, int64(n)); err != nil {
			return t.errorFrame(c, out, err)
		}
		return appendText(out, frameRefuse, byte(Other), forbidden(c, "LPs"))
	}
	if lim := t.maxLP(); n > lim {
		return t.errorFrame(c, out, &wireError{ErrFrameTooLarge, fmt.Sprintf("LP of %d bytes exceeds this node's limit of %d (lp.Limits.MaxTotal)", n, lim)})
	}
	// A fresh buffer for every LP: the decoded Process aliases it and the
	// handler keeps it.
	buf, release, err := t.readFrame(c, r, n, ctx.Done())
	defer release()
	if err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			err = &wireError{ErrFrame, fmt.Sprintf("stream ended inside a %d-byte LP frame", n)}
		}
		return t.errorFrame(c, out, err)
	}
	p := new(lp.Process)
	if err := lp.Decode(buf, t.cfg.Limits, p); err != nil {
		return t.errorFrame(c, out, &wireError{ErrBadLP, err.Error()})
	}
	if err := t.accept(ctx, c, p); err != nil {
		var ref *Refusal
		if !errors.As(err, &ref) {
			ref = &Refusal{Reason: Other, Detail: err.Error()}
		}
		return appendText(out, frameRefuse, byte(ref.Reason), ref.Detail)
	}
	return appendFrame(out, frameAck, p.ID[:])
}

// maxLP is the largest LP the decoder would accept.
func (t *Transport) maxLP() int {
	if m := t.cfg.Limits.MaxTotal; m > 0 {
		return m
	}
	return lp.DefaultLimits.MaxTotal
}

// readPayload reads an n-byte payload into a new buffer. A large payload's
// buffer grows as its bytes arrive instead of being allocated from the
// declared length, so a peer that announces a big frame and sends little
// costs little.
func readPayload(r io.Reader, n int) ([]byte, error) {
	const step = 64 << 10
	if n <= step {
		buf := make([]byte, n)
		_, err := io.ReadFull(r, buf)
		return buf, err
	}
	buf := make([]byte, 0, step)
	for len(buf) < n {
		if len(buf) == cap(buf) {
			buf = slices.Grow(buf, min(len(buf), n-len(buf))) // double, up to n
		}
		m, err := r.Read(buf[len(buf):min(cap(buf), n)])
		buf = buf[:len(buf)+m]
		if err != nil && len(buf) < n {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
	}
	return buf, nil
}

// accept hands p to the handler. ctx is the stream's: it ends when the
// sender gives up on the exchange or the connection closes, at no cost per
// LP. A panicking handler refuses the LP rather than taking the node down,
// as net/http does for a panicking handler.
func (t *Transport) accept(ctx context.Context, c *conn, p *lp.Process) (err error) {
	h := t.cfg.Handler
	if h == nil {
		return &Refusal{Reason: ShuttingDown, Detail: t.name + " takes no LPs"}
	}
	if ctx.Err() != nil {
		// The sender gave up on this exchange (or the connection closed)
		// while the frame arrived: it may be sending the LP elsewhere, so
		// taking it here would only make a second copy.
		return &Refusal{Reason: Other, Detail: "the sender gave up before the LP was taken"}
	}
	defer func() {
		if v := recover(); v != nil {
			t.log.Error("handler panicked", "peer", c.peer, "lp", p.ID, "panic", v)
			err = &Refusal{Reason: Other, Detail: "handler panicked"}
		}
	}()
	return h.AcceptLP(ctx, c.peer, p)
}

// errorFrame turns a failure to read a request into the ERROR answer.
func (t *Transport) errorFrame(c *conn, out []byte, err error) []byte {
	var we *wireError
	if !errors.As(err, &we) {
		// The stream failed (deadline, reset): an answer may not arrive,
		// but costs nothing to try.
		we = &wireError{ErrFrame, err.Error()}
	}
	t.log.Warn("bad frame from peer", "peer", c.peer, "addr", c.addr, "err", we)
	return appendText(out, frameError, byte(we.code), we.msg)
}

// bufPool holds encode buffers for Send; the frame is written before Send
// returns, so the buffer is free again.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 8<<10); return &b }}

// maxPooledBuf keeps a rare huge LP from pinning its buffer in the pool.
const maxPooledBuf = 1 << 20

// Send migrates p to the node listening at addr and returns nil once that
// node has acknowledged it: from then on the peer owns p, and the caller
// must forget it. A *Refusal means the peer did not take p (the caller
// still owns it); a *ProtocolError that the peer could not read it; any
// other error that p may or may not have arrived (the connection failed
// or timed out after the frame left). Send is safe for concurrent use; it
// does not modify p. With ctx already done it sends nothing and returns
// ctx's error.
func (t *Transport) Send(ctx context.Context, addr string, p *lp.Process) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("send lp %s to %s: %w", p.ID, addr, context.Cause(ctx))
	}
	bp := bufPool.Get().(*[]byte)
	buf, err := p.AppendBinary(append((*bp)[:0], make([]byte, maxHeader)...))
	if err != nil {
		bufPool.Put(bp)
		return fmt.Errorf("send lp %s to %s: %w", p.ID, addr, err)
	}
	if n := len(buf) - maxHeader; n > t.cfg.MaxFrame {
		bufPool.Put(bp)
		return fmt.Errorf("send lp %s to %s: encoded LP of %d bytes exceeds MaxFrame %d", p.ID, addr, n, t.cfg.MaxFrame)
	}
	start := putHeader(buf[:maxHeader], frameLP, len(buf)-maxHeader)
	reuse, err := t.exchange(ctx, addr, p.ID, buf[start:])
	if reuse && cap(buf) <= maxPooledBuf {
		*bp = buf[:0]
		bufPool.Put(bp)
	}
	if err != nil {
		return fmt.Errorf("send lp %s to %s: %w", p.ID, addr, err)
	}
	return nil
}

// exchange writes one request frame on a stream to addr and reads the
// answer. reuse reports whether the frame's buffer is free again (quic-go
// may still hold it after a failed write).
func (t *Transport) exchange(ctx context.Context, addr string, id lp.ID, frame []byte) (reuse bool, err error) {
	c, err := t.connTo(ctx, addr)
	if err != nil {
		return true, err
	}
	s, err := t.getStream(ctx, c)
	if err != nil {
		return true, err
	}
	if ctx.Err() != nil {
		// A pooled stream and a cached connection never look at ctx, and
		// the cancellation below would race the write: a caller that gave
		// up (a node stopping hard) must not hand the LP on regardless.
		t.putStream(c, s)
		return true, context.Cause(ctx)
	}
	stop := s.w.arm(ctx, t.cfg.Timeout)
	reuse, keep, err := t.exchangeOn(ctx, c, s, id, frame)
	// Disarm before the stream goes back to the pool, where another
	// exchange may take it at once.
	s.w.disarm(stop)
	if keep {
		t.putStream(c, s)
	} else {
		s.discard()
	}
	return reuse, err
}

// exchangeOn is exchange's part on a checked-out, armed stream; keep
// reports whether the stream is in step for the next exchange.
func (t *Transport) exchangeOn(ctx context.Context, c *conn, s *stream, id lp.ID, frame []byte) (reuse, keep bool, err error) {
	if _, err := s.qs.Write(frame); err != nil {
		// A peer that rejects a frame early (too large, say) answers ERROR
		// and stops reading; the write then fails, but the answer says why.
		var se *quic.StreamError
		if !errors.As(err, &se) || !se.Remote {
			return false, false, t.streamFailed(ctx, c, err)
		}
		if typ, payload, rerr := t.readAnswer(s); rerr == nil && typ == frameError && len(payload) >= 1 {
			return false, false, &ProtocolError{Code: ErrorCode(payload[0]), Msg: string(payload[1:])}
		}
		return false, false, t.streamFailed(ctx, c, err)
	}
	if t.cfg.MaxIdleStreams < 0 {
		s.qs.Close() // one exchange per stream: the FIN goes with the frame
	}
	typ, payload, err := t.readAnswer(s)
	if err != nil {
		var we *wireError
		if errors.As(err, &we) {
			return true, false, fmt.Errorf("bad answer from %s: %w", c.peer, err)
		}
		return true, false, t.streamFailed(ctx, c, err)
	}
	switch {
	case typ == frameAck && len(payload) == len(id) && lp.ID(payload) == id:
		return true, true, nil
	case typ == frameAck:
		// The stream is out of step with its peer: drop it.
		return true, false, fmt.Errorf("bad answer from %s: ACK for %x, not for the LP sent", c.peer, payload)
	case typ == frameRefuse && len(payload) >= 1:
		// Copied out of s's scratch space before the stream is reused.
		return true, true, &Refusal{Reason: RefuseReason(payload[0]), Detail: string(payload[1:])}
	case typ == frameError && len(payload) >= 1:
		return true, false, &ProtocolError{Code: ErrorCode(payload[0]), Msg: string(payload[1:])}
	}
	return true, false, fmt.Errorf("bad answer from %s: unexpected %s frame of %d bytes", c.peer, typ, len(payload))
}

// readAnswer reads one response frame from s. The payload aliases s's
// scratch space when it fits.
func (t *Transport) readAnswer(s *stream) (frameType, []byte, error) {
	typ, n, err := readHeader(s.r, maxResponse)
	if err != nil {
		return 0, nil, err
	}
	payload := s.scratch[:0]
	if n > len(s.scratch) {
		payload = make([]byte, n)
	}
	payload = payload[:n]
	if _, err := io.ReadFull(s.r, payload); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			err = &wireError{ErrFrame, "stream ended inside an answer"}
		}
		return 0, nil, err
	}
	return typ, payload, nil
}

// streamFailed classifies a stream failure. A peer that let the deadline
// pass is treated as gone: its connection closes, so the next Send redials
// instead of queueing behind it. That holds for the caller's deadline too:
// callers usually bound a migration well under Timeout, and a peer that hung
// would otherwise keep its connection, and cost every later send the wait.
// A canceled caller says nothing about the peer.
func (t *Transport) streamFailed(ctx context.Context, c *conn, err error) error {
	cerr := ctx.Err()
	if cerr != nil && !errors.Is(cerr, context.DeadlineExceeded) {
		return context.Cause(ctx)
	}
	if cerr != nil || pastCallerDeadline(ctx, err) {
		c.fail(codeTimeout, "no answer within the sender's deadline")
		if cerr == nil {
			cerr = context.DeadlineExceeded
		}
		return fmt.Errorf("%s did not answer before the sender's deadline: %w", c.peer, cerr)
	}
	var se *quic.StreamError
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		c.fail(codeTimeout, fmt.Sprintf("no answer within %v", t.cfg.Timeout))
		return fmt.Errorf("%s did not answer within %v: %w", c.peer, t.cfg.Timeout, err)
	case errors.As(err, &se):
		return fmt.Errorf("stream to %s: %w", c.peer, err) // this stream only
	}
	c.fail(codeBroken, "connection failed")
	return fmt.Errorf("connection to %s: %w", c.peer, err)
}

// pastCallerDeadline reports whether err is the stream's deadline firing
// for the caller's: it is set to the caller's deadline when that is the
// earlier one, and may fire a moment before ctx notices.
func pastCallerDeadline(ctx context.Context, err error) bool {
	d, ok := ctx.Deadline()
	return ok && errors.Is(err, os.ErrDeadlineExceeded) && !time.Now().Before(d)
}

// getStream checks out an idle stream of c or opens a new one. Opening
// blocks while the peer's limit of concurrent streams is reached.
func (t *Transport) getStream(ctx context.Context, c *conn) (*stream, error) {
	c.mu.Lock()
	if n := len(c.idle); n > 0 {
		s := c.idle[n-1]
		c.idle[n-1] = nil
		c.idle = c.idle[:n-1]
		c.mu.Unlock()
		return s, nil
	}
	c.mu.Unlock()
	octx, cancel := context.WithTimeout(ctx, t.cfg.Timeout)
	defer cancel()
	qs, err := c.qc.OpenStreamSync(octx)
	if err != nil {
		if ctx.Err() != nil {
			return nil, context.Cause(ctx)
		}
		// Either the connection failed or the peer's stream limit stayed
		// full for Timeout: both mean this connection is no good.
		c.fail(codeBroken, "cannot open a stream")
		return nil, fmt.Errorf("open stream to %s: %w", c.peer, err)
	}
	return &stream{qs: qs, r: bufio.NewReaderSize(qs, 512), w: newWatchdog(qs)}, nil
}

// putStream returns a stream after a completed exchange: to the idle pool,
// or closed when the pool is full, reuse is off or c has died.
func (t *Transport) putStream(c *conn, s *stream) {
	if t.cfg.MaxIdleStreams > 0 && c.alive() {
		c.mu.Lock()
		if len(c.idle) < t.cfg.MaxIdleStreams {
			c.idle = append(c.idle, s)
			c.mu.Unlock()
			return
		}
		c.mu.Unlock()
	}
	s.qs.Close()
	s.qs.CancelRead(codeDiscard)
}
