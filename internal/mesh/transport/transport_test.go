package transport

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/iotest"
	"time"
	"unicode/utf8"

	"github.com/quic-go/quic-go"

	"github.com/tsubame-rt/tsubame/internal/mesh/pki"
	"github.com/tsubame-rt/tsubame/internal/testutil"
	"github.com/tsubame-rt/tsubame/lp"
)

// recorder is a Handler that keeps what it accepts and answers with refuse
// when set.
type recorder struct {
	mu     sync.Mutex
	got    map[lp.ID]int
	from   map[lp.ID]string
	procs  []*lp.Process
	refuse func(*lp.Process) error
}

func newRecorder() *recorder { return &recorder{got: map[lp.ID]int{}, from: map[lp.ID]string{}} }

func (r *recorder) AcceptLP(_ context.Context, from string, p *lp.Process) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.refuse != nil {
		if err := r.refuse(p); err != nil {
			return err
		}
	}
	r.got[p.ID]++
	r.from[p.ID] = from
	r.procs = append(r.procs, p)
	return nil
}

func (r *recorder) count(id lp.ID) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.got[id]
}

// snapshot returns the accepted LPs in arrival order and who sent each.
func (r *recorder) snapshot() ([]*lp.Process, map[lp.ID]string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	from := make(map[lp.ID]string, len(r.from))
	for k, v := range r.from {
		from[k] = v
	}
	return append([]*lp.Process(nil), r.procs...), from
}

func (r *recorder) total() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.procs)
}

func testCA(t testing.TB) *pki.CA {
	t.Helper()
	ca, err := pki.NewCA("test-ca")
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

func nodeTLS(t testing.TB, ca *pki.CA, name string) *tls.Config {
	t.Helper()
	c, err := ca.IssueTLS(name)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// start starts a transport named name on a loopback port and closes it when
// the test ends.
func start(t testing.TB, ca *pki.CA, name string, h Handler, tweak ...func(*Config)) *Transport {
	t.Helper()
	c := Config{Listen: "127.0.0.1:0", TLS: nodeTLS(t, ca, name), Handler: h, Timeout: 3 * time.Second}
	for _, f := range tweak {
		f(&c)
	}
	tr, err := Listen(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	return tr
}

func testLP(size int) *lp.Process {
	in := make([]byte, size)
	for i := range in {
		in[i] = byte(i)
	}
	return lp.New("gw", "echo", "run", in)
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestSendAck(t *testing.T) {
	ca := testCA(t)
	ha, hb := newRecorder(), newRecorder()
	a, b := start(t, ca, "node-a", ha), start(t, ca, "node-b", hb)
	if a.Name() != "node-a" {
		t.Fatalf("Name() = %q", a.Name())
	}
	p := testLP(4 << 10)
	p.Attempt, p.Deadline = 2, 12345
	if err := a.Send(ctxT(t), b.Addr(), p); err != nil {
		t.Fatal(err)
	}
	if hb.count(p.ID) != 1 {
		t.Fatalf("handler got the LP %d times, want 1", hb.count(p.ID))
	}
	procs, from := hb.snapshot()
	got := procs[0]
	if from[p.ID] != "node-a" {
		t.Errorf("from = %q, want node-a (the sender's certificate name)", from[p.ID])
	}
	if got.Origin != "gw" || got.Attempt != 2 || got.Deadline != 12345 || string(got.Entries[0].Input) != string(p.Entries[0].Input) {
		t.Errorf("received LP differs: %+v", got)
	}

	// The reverse direction reuses the connection a opened.
	q := testLP(10)
	if err := b.Send(ctxT(t), a.Addr(), q); err != nil {
		t.Fatal(err)
	}
	if _, from := ha.snapshot(); ha.count(q.ID) != 1 || from[q.ID] != "node-b" {
		t.Fatalf("reverse send: count %d from %q", ha.count(q.ID), from[q.ID])
	}
	for _, tr := range []*Transport{a, b} {
		tr.mu.Lock()
		n := len(tr.conns)
		tr.mu.Unlock()
		if n != 1 {
			t.Errorf("%s has %d connections, want 1 shared by both directions", tr.Name(), n)
		}
	}

	// When the peer goes away, its connection and address-book entry go too.
	b.Close()
	testutil.WaitFor(t, "the closed peer's connection and address-book entry to go", func() bool {
		a.mu.Lock()
		defer a.mu.Unlock()
		return len(a.conns) == 0 && len(a.peers) == 0
	})
}

func TestLargeLP(t *testing.T) {
	ca := testCA(t)
	h := newRecorder()
	a, b := start(t, ca, "a", nil), start(t, ca, "b", h)
	p := testLP(lp.DefaultLimits.MaxBytes) // several flow-control windows' worth
	if err := a.Send(ctxT(t), b.Addr(), p); err != nil {
		t.Fatal(err)
	}
	procs, _ := h.snapshot()
	if len(procs) != 1 || string(procs[0].Entries[0].Input) != string(p.Entries[0].Input) {
		t.Fatal("large LP did not arrive intact")
	}
}

// TestReceivedLPOwnsItsBuffer checks that an accepted LP's bytes are not
// overwritten by the LPs that arrive after it on the same stream.
func TestReceivedLPOwnsItsBuffer(t *testing.T) {
	ca := testCA(t)
	h := newRecorder()
	a, b := start(t, ca, "a", nil), start(t, ca, "b", h)
	var sent []*lp.Process
	for i := range 20 {
		p := lp.New(fmt.Sprintf("origin-%d", i), "echo", "run", []byte(strings.Repeat(string(rune('a'+i)), 100)))
		if err := a.Send(ctxT(t), b.Addr(), p); err != nil {
			t.Fatal(err)
		}
		sent = append(sent, p)
	}
	procs, _ := h.snapshot()
	for i, p := range sent {
		got := procs[i]
		if got.ID != p.ID || got.Origin != p.Origin || string(got.Entries[0].Input) != string(p.Entries[0].Input) {
			t.Fatalf("LP %d changed after later LPs arrived: origin %q input %.10q", i, got.Origin, got.Entries[0].Input)
		}
	}
}

func TestRefusal(t *testing.T) {
	ca := testCA(t)
	h := newRecorder()
	a, b := start(t, ca, "a", nil), start(t, ca, "b", h)
	h.mu.Lock()
	h.refuse = func(p *lp.Process) error {
		switch p.Origin {
		case "full":
			return &Refusal{Reason: Overloaded, Detail: "queue full (128)"}
		case "plain":
			return errors.New("disk on fire")
		}
		return nil
	}
	h.mu.Unlock()
	err := a.Send(ctxT(t), b.Addr(), lp.New("full", "c", "k", nil))
	var ref *Refusal
	if !errors.As(err, &ref) || ref.Reason != Overloaded || ref.Detail != "queue full (128)" {
		t.Fatalf("err = %v, want a *Refusal overloaded 'queue full (128)'", err)
	}
	err = a.Send(ctxT(t), b.Addr(), lp.New("plain", "c", "k", nil))
	if !errors.As(err, &ref) || ref.Reason != Other || ref.Detail != "disk on fire" {
		t.Fatalf("err = %v, want a *Refusal other 'disk on fire'", err)
	}
	// The refused LPs were not kept, and the stream still works.
	if err := a.Send(ctxT(t), b.Addr(), lp.New("ok", "c", "k", nil)); err != nil {
		t.Fatal(err)
	}
	if h.total() != 1 {
		t.Fatalf("handler kept %d LPs, want 1", h.total())
	}
	if err := b.Send(ctxT(t), a.Addr(), lp.New("x", "c", "k", nil)); !errors.As(err, &ref) || ref.Reason != ShuttingDown {
		t.Fatalf("send to a transport without a handler: err = %v, want a refusal", err)
	}
}

func TestConcurrentSends(t *testing.T) {
	for _, mode := range []struct {
		name string
		idle int
	}{{"pooled", 0}, {"new-stream", -1}} {
		t.Run(mode.name, func(t *testing.T) {
			ca := testCA(t)
			h := newRecorder()
			set := func(c *Config) { c.MaxIdleStreams = mode.idle }
			a, b := start(t, ca, "a", nil, set), start(t, ca, "b", h, set)
			const goroutines, each = 64, 8
			ids := make([][]lp.ID, goroutines)
			errs := make(chan error, goroutines*each)
			var wg sync.WaitGroup
			for g := range goroutines {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for range each {
						p := testLP(1 << 10)
						ids[g] = append(ids[g], p.ID)
						errs <- a.Send(ctxT(t), b.Addr(), p)
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Fatal(err)
				}
			}
			for _, l := range ids {
				for _, id := range l {
					if n := h.count(id); n != 1 {
						t.Fatalf("LP %s delivered %d times, want exactly once", id, n)
					}
				}
			}
			if h.total() != goroutines*each {
				t.Fatalf("handler got %d LPs, want %d", h.total(), goroutines*each)
			}
		})
	}
}

// rawClient dials tr with a bare quic-go connection.
func rawClient(t *testing.T, tr *Transport, tc *tls.Config) (*quic.Conn, error) {
	t.Helper()
	tc = tc.Clone()
	if tc.NextProtos == nil {
		tc.NextProtos = []string{ALPN}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := quic.DialAddr(ctx, tr.Addr(), tc, &quic.Config{HandshakeIdleTimeout: 3 * time.Second})
	if err == nil {
		t.Cleanup(func() { c.CloseWithError(0, "") })
	}
	return c, err
}

// exchangeRaw writes b on a new stream of c and reads one answer frame.
func exchangeRaw(t *testing.T, c *quic.Conn, b []byte) (frameType, []byte, *quic.Stream, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := c.OpenStreamSync(ctx)
	if err != nil {
		return 0, nil, nil, err
	}
	_ = s.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := s.Write(b); err != nil {
		return 0, nil, s, err
	}
	typ, payload, err := readFrame(bufio.NewReader(s), maxResponse)
	return typ, payload, s, err
}

func TestForeignCertificatesRejected(t *testing.T) {
	ours, theirs := testCA(t), testCA(t)
	h := newRecorder()
	b := start(t, ours, "b", h)

	// A node of another cluster can neither connect nor migrate anything.
	x := start(t, theirs, "intruder", newRecorder())
	if err := x.Send(ctxT(t), b.Addr(), testLP(10)); err == nil {
		t.Fatal("a node with a foreign CA's certificate delivered an LP")
	}

	// A client that trusts our CA (so only the server's check is tested)
	// but holds a foreign certificate, and one with no certificate at all.
	foreign := nodeTLS(t, theirs, "intruder")
	foreign.RootCAs = nodeTLS(t, ours, "x").RootCAs
	anon := &tls.Config{MinVersion: tls.VersionTLS13, RootCAs: foreign.RootCAs}
	frame := appendFrame(nil, frameLP, mustEncode(t, testLP(10)))
	for name, tc := range map[string]*tls.Config{"foreign certificate": foreign, "no certificate": anon} {
		c, err := rawClient(t, b, tc)
		if err != nil {
			continue // refused during the handshake
		}
		// TLS 1.3 lets a client finish before the server has checked its
		// certificate; the server then closes the connection.
		if typ, _, _, err := exchangeRaw(t, c, frame); err == nil {
			t.Errorf("%s: got a %s answer, want the connection refused", name, typ)
		}
	}
	if h.total() != 0 {
		t.Fatalf("handler accepted %d LPs from outside the cluster", h.total())
	}
}

func TestALPNVersionMismatch(t *testing.T) {
	ca := testCA(t)
	b := start(t, ca, "b", newRecorder())

	// A client speaking a future version is refused during the handshake.
	tc := nodeTLS(t, ca, "future")
	tc.NextProtos = []string{"tsubame/2"}
	if _, err := rawClient(t, b, tc); err == nil {
		t.Fatal("a tsubame/2 client connected to a tsubame/1 node")
	}

	// A sender talking to a future-version peer gets an error naming the
	// protocol.
	stc := nodeTLS(t, ca, "future-server")
	stc.NextProtos = []string{"tsubame/2"}
	ln, err := quic.ListenAddr("127.0.0.1:0", stc, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			if _, err := ln.Accept(context.Background()); err != nil {
				return
			}
		}
	}()
	a := start(t, ca, "a", nil)
	err = a.Send(ctxT(t), ln.Addr().String(), testLP(10))
	if err == nil || !strings.Contains(err.Error(), "does not speak "+ALPN) {
		t.Fatalf("err = %v, want one saying the peer does not speak %s", err, ALPN)
	}
}

// TestBadAnswers: a peer that answers out of step (an ACK for another LP,
// a frame that is no answer) makes Send fail; it never counts as delivered.
func TestBadAnswers(t *testing.T) {
	ca := testCA(t)
	stc := nodeTLS(t, ca, "liar")
	stc.NextProtos = []string{ALPN}
	ln, err := quic.ListenAddr("127.0.0.1:0", stc, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	answers := [][]byte{
		appendFrame(nil, frameAck, make([]byte, 16)),
		appendFrame(nil, frameLP, []byte("not an answer")),
	}
	go func() {
		c, err := ln.Accept(context.Background())
		if err != nil {
			return
		}
		for _, a := range answers {
			s, err := c.AcceptStream(context.Background())
			if err != nil {
				return
			}
			r := bufio.NewReader(s)
			if _, n, err := readHeader(r, 1<<20); err == nil {
				_, _ = io.CopyN(io.Discard, r, int64(n))
				_, _ = s.Write(a)
			}
		}
	}()
	a := start(t, ca, "a", nil)
	for _, want := range []string{"ACK for 0000", "unexpected LP frame"} {
		err := a.Send(ctxT(t), ln.Addr().String(), testLP(10))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("err = %v, want one mentioning %q", err, want)
		}
	}
}

func mustEncode(t testing.TB, p *lp.Process) []byte {
	t.Helper()
	b, err := p.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestMalformedFrames(t *testing.T) {
	ca := testCA(t)
	h := newRecorder()
	b := start(t, ca, "b", h)
	c, err := rawClient(t, b, nodeTLS(t, ca, "raw"))
	if err != nil {
		t.Fatal(err)
	}
	good := testLP(100)
	bad := mustEncode(t, testLP(100))
	bad[4] = 99 // wire version
	huge := binary.AppendUvarint([]byte{byte(frameLP)}, 1<<62)
	cases := []struct {
		name  string
		bytes []byte
		code  ErrorCode
		want  string
	}{
		{"unknown type", []byte{0x7f, 0}, ErrFrameType, "frame type 127"},
		{"request without a kind", appendFrame(nil, frameRequest, nil), ErrBadRequest, "kind byte"},
		{"RESPONSE as request", appendFrame(nil, frameResponse, []byte{0}), ErrFrameType, "RESPONSE"},
		{"response as request", appendFrame(nil, frameAck, good.ID[:]), ErrFrameType, "ACK"},
		{"undecodable LP", appendFrame(nil, frameLP, bad), ErrBadLP, "version"},
		// Were the receiver to allocate before checking, 2^62 bytes would
		// crash the test.
		{"huge length", huge, ErrFrameTooLarge, "exceeds the limit of 33554432"},
		{"bad varint", []byte{byte(frameLP), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f}, ErrFrame, "overflows"},
	}
	// Keep one good stream open across the bad ones: the connection's other
	// streams must keep working.
	typ, _, keep, err := exchangeRaw(t, c, appendFrame(nil, frameLP, mustEncode(t, testLP(10))))
	if err != nil || typ != frameAck {
		t.Fatalf("first good exchange: %s, %v", typ, err)
	}
	for _, tc := range cases {
		typ, payload, s, err := exchangeRaw(t, c, tc.bytes)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if typ != frameError || len(payload) < 1 || ErrorCode(payload[0]) != tc.code || !strings.Contains(string(payload[1:]), tc.want) {
			t.Fatalf("%s: answer %s %q, want ERROR %s mentioning %q", tc.name, typ, payload, tc.code, tc.want)
		}
		// ERROR ends the stream.
		if _, err := s.Read(make([]byte, 1)); err == nil {
			t.Errorf("%s: stream still open after ERROR", tc.name)
		}
	}
	r := bufio.NewReader(keep)
	_ = keep.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := keep.Write(appendFrame(nil, frameLP, mustEncode(t, good))); err != nil {
		t.Fatal(err)
	}
	if typ, n, err := readHeader(r, maxResponse); err != nil || typ != frameAck || n != len(good.ID) {
		t.Fatalf("good stream after bad ones: %s (%d bytes), %v", typ, n, err)
	}
	if h.count(good.ID) != 1 || h.total() != 2 {
		t.Fatalf("handler got %d LPs, want the 2 good ones", h.total())
	}
}

// TestReadPayloadGrowsWithData: the buffer for a large frame follows the
// bytes that arrive, not the length announced. Allocating 2^40 bytes up
// front would crash the test.
func TestReadPayloadGrowsWithData(t *testing.T) {
	if _, err := readPayload(strings.NewReader("only a few bytes"), 1<<40); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("err = %v, want io.ErrUnexpectedEOF", err)
	}
	want := strings.Repeat("0123456789abcdef", 20000) // 320000 bytes: several growth steps
	got, err := readPayload(iotest.OneByteReader(strings.NewReader(want+"trailing")), len(want))
	if err != nil || string(got) != want {
		t.Fatalf("readPayload: %d bytes, %v; want the %d bytes written", len(got), err, len(want))
	}
}

func TestFrameLimit(t *testing.T) {
	ca := testCA(t)
	h := newRecorder()
	a := start(t, ca, "a", nil)
	b := start(t, ca, "b", h, func(c *Config) { c.MaxFrame = 1 << 10 })
	err := a.Send(ctxT(t), b.Addr(), testLP(4<<10))
	var pe *ProtocolError
	if !errors.As(err, &pe) || pe.Code != ErrFrameTooLarge {
		t.Fatalf("err = %v, want a *ProtocolError %s", err, ErrFrameTooLarge)
	}
	if err := a.Send(ctxT(t), b.Addr(), testLP(100)); err != nil {
		t.Fatalf("small LP after a too-large one: %v", err)
	}
	if h.total() != 1 {
		t.Fatalf("handler got %d LPs, want 1", h.total())
	}

	// The LP limit applies too, before the LP's bytes are read.
	c := start(t, ca, "c", h, func(c *Config) { c.Limits.MaxTotal = 1 << 10 })
	err = a.Send(ctxT(t), c.Addr(), testLP(4<<10))
	if !errors.As(err, &pe) || pe.Code != ErrFrameTooLarge || !strings.Contains(pe.Msg, "MaxTotal") {
		t.Fatalf("err = %v, want a *ProtocolError naming MaxTotal", err)
	}
}

func TestPeerDeathAndRedial(t *testing.T) {
	ca := testCA(t)
	bTLS := nodeTLS(t, ca, "b")
	a := start(t, ca, "a", nil, func(c *Config) { c.Timeout = time.Second })
	b, err := Listen(context.Background(), Config{Listen: "127.0.0.1:0", TLS: bTLS, Handler: newRecorder()})
	if err != nil {
		t.Fatal(err)
	}
	addr := b.Addr()
	if err := a.Send(ctxT(t), addr, testLP(100)); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	// Send's own Timeout (1s) bounds this: it returns an error rather
	// than waiting for a peer that is gone.
	if err := a.Send(context.Background(), addr, testLP(100)); err == nil {
		t.Fatal("send to a closed peer succeeded")
	}

	h := newRecorder()
	b2, err := Listen(context.Background(), Config{Listen: addr, TLS: bTLS, Handler: h})
	if err != nil {
		// Another process may have taken the port just freed.
		t.Skipf("could not rebind %s: %v", addr, err)
	}
	defer b2.Close()
	p := testLP(100)
	testutil.WaitFor(t, "a redial to the restarted peer", func() bool { return a.Send(ctxT(t), addr, p) == nil })
	if h.count(p.ID) != 1 {
		t.Fatalf("restarted peer got the LP %d times", h.count(p.ID))
	}
}

// TestRestartedPeerResetsStaleConnection: a peer that crashed (no
// CONNECTION_CLOSE sent) and came back with the same key answers the old
// connection with a stateless reset, so the sender learns at once instead of
// waiting for its Timeout.
func TestRestartedPeerResetsStaleConnection(t *testing.T) {
	ca := testCA(t)
	bTLS := nodeTLS(t, ca, "b")
	a := start(t, ca, "a", nil, func(c *Config) { c.Timeout = 10 * time.Second })
	b, err := Listen(context.Background(), Config{Listen: "127.0.0.1:0", TLS: bTLS, Handler: newRecorder()})
	if err != nil {
		t.Fatal(err)
	}
	addr := b.Addr()
	if err := a.Send(ctxT(t), addr, testLP(2<<10)); err != nil {
		t.Fatal(err)
	}
	// A crash: the socket goes away and no connection is closed politely.
	b.udp.Close()
	defer b.Close()

	h := newRecorder()
	b2, err := Listen(context.Background(), Config{Listen: addr, TLS: bTLS, Handler: h})
	if err != nil {
		// Another process may have taken the port just freed.
		t.Skipf("could not rebind %s: %v", addr, err)
	}
	defer b2.Close()
	err = a.Send(ctxT(t), addr, testLP(2<<10))
	var reset *quic.StatelessResetError
	if !errors.As(err, &reset) {
		t.Fatalf("send on the stale connection: err = %v, want a stateless reset", err)
	}
	p := testLP(100)
	if err := a.Send(ctxT(t), addr, p); err != nil {
		t.Fatalf("send after the reset did not redial: %v", err)
	}
	if h.count(p.ID) != 1 {
		t.Fatalf("restarted peer got the LP %d times", h.count(p.ID))
	}
}

func TestSendHonoursContext(t *testing.T) {
	ca := testCA(t)
	block, started := make(chan struct{}), make(chan struct{})
	t.Cleanup(func() { close(block) })
	var once sync.Once
	slow := HandlerFunc(func(ctx context.Context, _ string, _ *lp.Process) error {
		once.Do(func() { close(started) })
		select {
		case <-block:
		case <-ctx.Done():
		}
		return nil
	})
	a, b := start(t, ca, "a", nil), start(t, ca, "b", slow)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- a.Send(ctx, b.Addr(), testLP(10)) }()
	select {
	case <-started: // the LP arrived and the handler is holding the exchange
	case err := <-errc:
		t.Fatalf("send ended before the handler ran: %v", err)
	}
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

// A peer that does not answer before the caller's deadline (shorter than
// Timeout, as the node's migrations are) loses its connection like one that
// misses Timeout: the next Send redials instead of reusing it.
func TestHungPeerConnectionRetired(t *testing.T) {
	ca := testCA(t)
	block := make(chan struct{})
	t.Cleanup(func() { close(block) })
	var calls atomic.Int32
	hang := HandlerFunc(func(ctx context.Context, _ string, _ *lp.Process) error {
		if calls.Add(1) == 2 { // the second LP hangs
			select {
			case <-block:
			case <-ctx.Done():
			}
		}
		return nil
	})
	a := start(t, ca, "a", nil, func(c *Config) { c.Timeout = 10 * time.Second })
	b := start(t, ca, "b", hang)
	if err := a.Send(ctxT(t), b.Addr(), testLP(10)); err != nil {
		t.Fatal(err)
	}
	first := connOf(a, b.Addr())
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := a.Send(ctx, b.Addr(), testLP(10)); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("send to a hung peer: %v, want context.DeadlineExceeded", err)
	}
	if first == nil || first.alive() {
		t.Fatal("the hung peer's connection is still in use")
	}
	if err := a.Send(ctxT(t), b.Addr(), testLP(10)); err != nil {
		t.Fatalf("send after the hang: %v", err)
	}
	if c := connOf(a, b.Addr()); c == nil || c == first {
		t.Fatal("the send after the hang did not redial")
	}
}

// A REFUSE or ERROR text over maxText is cut on a rune boundary.
func TestAppendTextCutsOnRune(t *testing.T) {
	for _, text := range []string{strings.Repeat("a", maxText-1) + "€€", strings.Repeat("€", maxText), strings.Repeat("a", maxText+5)} {
		_, payload, err := readFrame(bufio.NewReader(bytes.NewReader(appendText(nil, frameRefuse, 1, text))), maxResponse)
		if err != nil {
			t.Fatal(err)
		}
		got := string(payload[1:])
		if len(got) > maxText || len(got) < maxText-3 || !utf8.ValidString(got) || !strings.HasPrefix(text, got) {
			t.Errorf("%d-byte text cut to %d bytes, valid UTF-8 %v", len(text), len(got), utf8.ValidString(got))
		}
	}
}

// readFrame reads one whole frame of at most limit bytes.
func readFrame(r *bufio.Reader, limit int) (frameType, []byte, error) {
	typ, n, err := readHeader(r, limit)
	if err != nil {
		return 0, nil, err
	}
	payload := make([]byte, n)
	_, err = io.ReadFull(r, payload)
	return typ, payload, err
}

// connOf returns tr's current connection to addr, if any.
func connOf(tr *Transport, addr string) *conn {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	p := tr.peers[addr]
	if p == nil {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.c
}

// A receiver does not hand an LP to its handler once the sender has given
// up on the exchange: the sender may be sending it elsewhere.
func TestGaveUpSenderIsNotAccepted(t *testing.T) {
	ca := testCA(t)
	rec := newRecorder()
	b := start(t, ca, "b", rec)
	frame := appendFrame(nil, frameLP, mustEncode(t, testLP(10)))
	c := &conn{peer: "a", addr: "127.0.0.1:1"}
	for _, live := range []bool{true, false} {
		ctx, cancel := context.WithCancel(context.Background())
		if !live {
			cancel()
		}
		out := b.answer(ctx, c, bufio.NewReader(strings.NewReader(string(frame))), nil)
		cancel()
		want := frameAck
		if !live {
			want = frameRefuse
		}
		if frameType(out[0]) != want {
			t.Errorf("sender still waiting %v: answer %s, want %s", live, frameType(out[0]), want)
		}
	}
	if n := rec.total(); n != 1 {
		t.Errorf("handler took %d LPs, want only the one whose sender still waited", n)
	}
}

func TestCloseWithSendsInFlight(t *testing.T) {
	ca := testCA(t)
	// A short Timeout: sends that start dialling after b closed wait for it.
	a := start(t, ca, "a", nil, func(c *Config) { c.Timeout = 500 * time.Millisecond })
	b := start(t, ca, "b", newRecorder())
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 20 {
				if err := a.Send(ctxT(t), b.Addr(), testLP(512)); err != nil {
					return
				}
			}
		}()
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := a.Send(ctxT(t), b.Addr(), testLP(1)); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("send on a closed transport: %v, want net.ErrClosed", err)
	}
}

// A sender whose ctx is done sends nothing, even on a warm connection with a
// pooled stream (which never looks at ctx): a node stopping hard must not
// hand on the LPs it is dropping.
func TestSendWithDoneContextWritesNothing(t *testing.T) {
	ca := testCA(t)
	rec := newRecorder()
	a, b := start(t, ca, "a", nil), start(t, ca, "b", rec)
	if err := a.Send(ctxT(t), b.Addr(), testLP(10)); err != nil {
		t.Fatal(err) // warms the connection and pools its stream
	}
	if c := connOf(a, b.Addr()); c == nil || func() bool { c.mu.Lock(); defer c.mu.Unlock(); return len(c.idle) == 0 }() {
		t.Fatal("no pooled stream after a completed send")
	}
	done, cancel := context.WithCancel(context.Background())
	cancel()
	dropped := testLP(10)
	if err := a.Send(done, b.Addr(), dropped); !errors.Is(err, context.Canceled) {
		t.Fatalf("send with a canceled ctx: %v, want context.Canceled", err)
	}
	// Past Send's own check, as when ctx ends while Send is under way.
	if _, err := a.exchange(done, b.Addr(), dropped.ID, appendFrame(nil, frameLP, mustEncode(t, dropped))); !errors.Is(err, context.Canceled) {
		t.Fatalf("exchange with a canceled ctx: %v, want context.Canceled", err)
	}
	// Streams of one connection are read in any order, so send on every
	// pooled stream and then some: a frame written on any of them would be
	// handled before its stream's later frame is acknowledged.
	for range 4 {
		if err := a.Send(ctxT(t), b.Addr(), testLP(10)); err != nil {
			t.Fatal(err)
		}
	}
	if n := rec.count(dropped.ID); n != 0 {
		t.Fatalf("the peer's handler took the LP sent with a canceled ctx %d times", n)
	}
	if n := rec.total(); n != 5 {
		t.Fatalf("handler took %d LPs, want the 5 sent with a live ctx", n)
	}
}
