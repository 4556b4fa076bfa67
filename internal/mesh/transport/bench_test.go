package transport

import (
	"bufio"
	"context"
	"io"
	"net"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/tsubame-rt/tsubame/internal/cputime"
	"github.com/tsubame-rt/tsubame/lp"
)

// Benchmarks: one 4 KiB LP migrated and acknowledged (Send returns after the
// ACK), against bare quic-go moving the same number of bytes and a 18-byte
// answer, in the same run. Each reports p50-ns and p99-ns of the per-op
// latency and cpu-µs/op (both ends, one process) next to ns/op: on a shared
// machine the CPU per op moves far less than the wall time.
//
//	go test -run '^$' -bench . -benchtime 20000x -count 3 ./internal/mesh/transport

const benchInput = 4 << 10

// latencies collects per-op durations from any number of goroutines.
type latencies struct {
	mu sync.Mutex
	d  []time.Duration
}

func (l *latencies) add(d []time.Duration) {
	l.mu.Lock()
	l.d = append(l.d, d...)
	l.mu.Unlock()
}

func (l *latencies) report(b *testing.B) {
	if len(l.d) == 0 {
		return
	}
	slices.Sort(l.d)
	at := func(q float64) float64 { return float64(l.d[int(q*float64(len(l.d)-1))].Nanoseconds()) }
	b.ReportMetric(at(0.50), "p50-ns")
	b.ReportMetric(at(0.99), "p99-ns")
}

// parallel64 makes RunParallel use 64 goroutines whatever GOMAXPROCS is.
func parallel64(b *testing.B) {
	b.SetParallelism((64 + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
}

type discard struct{ n atomic.Int64 }

func (d *discard) AcceptLP(context.Context, string, *lp.Process) error { d.n.Add(1); return nil }

func benchPair(b *testing.B, idle int) (*Transport, string, *discard) {
	ca := testCA(b)
	h := &discard{}
	set := func(c *Config) { c.MaxIdleStreams = idle }
	a, r := start(b, ca, "a", nil, set), start(b, ca, "b", h, set)
	// Connect (and warm a stream) before timing.
	if err := a.Send(context.Background(), r.Addr(), testLP(benchInput)); err != nil {
		b.Fatal(err)
	}
	return a, r.Addr(), h
}

func benchHop(b *testing.B, idle int) {
	a, addr, h := benchPair(b, idle)
	p := testLP(benchInput)
	ctx := context.Background()
	d := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	cpu := cputime.Start()
	for range b.N {
		t0 := time.Now()
		if err := a.Send(ctx, addr, p); err != nil {
			b.Fatal(err)
		}
		d = append(d, time.Since(t0))
	}
	b.StopTimer()
	cpu.Report(b, b.N)
	if got := h.n.Load(); got != int64(b.N)+1 {
		b.Fatalf("receiver got %d LPs, want %d", got, b.N+1)
	}
	l := latencies{d: d}
	l.report(b)
}

func benchHopParallel(b *testing.B, idle int) {
	a, addr, _ := benchPair(b, idle)
	var l latencies
	parallel64(b)
	b.ReportAllocs()
	b.ResetTimer()
	cpu := cputime.Start()
	b.RunParallel(func(pb *testing.PB) {
		p := testLP(benchInput)
		ctx := context.Background()
		var d []time.Duration
		for pb.Next() {
			t0 := time.Now()
			if err := a.Send(ctx, addr, p); err != nil {
				b.Error(err)
				return
			}
			d = append(d, time.Since(t0))
		}
		l.add(d)
	})
	b.StopTimer()
	cpu.Report(b, b.N)
	l.report(b)
}

func BenchmarkMigrationHop(b *testing.B)                  { benchHop(b, 0) }
func BenchmarkMigrationHopNewStream(b *testing.B)         { benchHop(b, -1) }
func BenchmarkMigrationHopParallel(b *testing.B)          { benchHopParallel(b, 0) }
func BenchmarkMigrationHopNewStreamParallel(b *testing.B) { benchHopParallel(b, -1) }

// bare is a quic-go client and server with the transport's TLS and QUIC
// settings and nothing else: the server reads a length-prefixed message
// into a reused buffer and answers 18 bytes.
type bare struct {
	client *quic.Conn
	msg    []byte // a frame of the size Send writes for the benchmark LP
}

func newBare(b *testing.B) *bare {
	ca := testCA(b)
	alpn := []string{"bare"}
	stc, ctc := nodeTLS(b, ca, "server"), nodeTLS(b, ca, "client")
	stc.NextProtos, ctc.NextProtos = alpn, alpn
	qconf := &quic.Config{MaxIdleTimeout: maxIdleTimeout, KeepAlivePeriod: keepAlivePeriod, MaxIncomingStreams: maxIncomingStreams}
	ln, err := quic.ListenAddr("127.0.0.1:0", stc, qconf)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept(context.Background())
			if err != nil {
				return
			}
			go func() {
				for {
					s, err := c.AcceptStream(context.Background())
					if err != nil {
						return
					}
					go bareServe(s)
				}
			}()
		}
	}()
	udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	qt := &quic.Transport{Conn: udp}
	b.Cleanup(func() { qt.Close(); udp.Close() })
	c, err := qt.Dial(context.Background(), ln.Addr(), ctc, qconf)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.CloseWithError(0, "") })
	enc, err := testLP(benchInput).MarshalBinary()
	if err != nil {
		b.Fatal(err)
	}
	return &bare{client: c, msg: appendFrame(nil, frameLP, enc)}
}

func bareServe(s *quic.Stream) {
	r := bufio.NewReaderSize(s, 4<<10)
	var buf []byte
	ack := make([]byte, 18)
	for {
		_, n, err := readHeader(r, 1<<30)
		if err != nil {
			s.Close()
			return
		}
		buf = slices.Grow(buf[:0], n)[:n]
		if _, err := io.ReadFull(r, buf); err != nil {
			return
		}
		if _, err := s.Write(ack); err != nil {
			return
		}
	}
}

// roundTrip does one exchange on s (opening a stream per exchange when s is
// nil).
func (br *bare) roundTrip(b *testing.B, s *quic.Stream, ack []byte) {
	own := s == nil
	if own {
		var err error
		if s, err = br.client.OpenStreamSync(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := s.Write(br.msg); err != nil {
		b.Fatal(err)
	}
	if own {
		s.Close()
	}
	if _, err := io.ReadFull(s, ack); err != nil {
		b.Fatal(err)
	}
	if own {
		s.CancelRead(0)
	}
}

func benchBare(b *testing.B, newStream bool) {
	br := newBare(b)
	var s *quic.Stream
	if !newStream {
		var err error
		if s, err = br.client.OpenStreamSync(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
	ack := make([]byte, 18)
	br.roundTrip(b, s, ack)
	d := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	cpu := cputime.Start()
	for range b.N {
		t0 := time.Now()
		br.roundTrip(b, s, ack)
		d = append(d, time.Since(t0))
	}
	b.StopTimer()
	cpu.Report(b, b.N)
	l := latencies{d: d}
	l.report(b)
}

func benchBareParallel(b *testing.B, newStream bool) {
	br := newBare(b)
	var l latencies
	parallel64(b)
	b.ReportAllocs()
	b.ResetTimer()
	cpu := cputime.Start()
	b.RunParallel(func(pb *testing.PB) {
		var s *quic.Stream
		if !newStream {
			var err error
			if s, err = br.client.OpenStreamSync(context.Background()); err != nil {
				b.Error(err)
				return
			}
		}
		ack := make([]byte, 18)
		var d []time.Duration
		for pb.Next() {
			t0 := time.Now()
			br.roundTrip(b, s, ack)
			d = append(d, time.Since(t0))
		}
		l.add(d)
	})
	b.StopTimer()
	cpu.Report(b, b.N)
	l.report(b)
}

func BenchmarkBareQUICRoundTrip(b *testing.B)                  { benchBare(b, false) }
func BenchmarkBareQUICRoundTripNewStream(b *testing.B)         { benchBare(b, true) }
func BenchmarkBareQUICRoundTripParallel(b *testing.B)          { benchBareParallel(b, false) }
func BenchmarkBareQUICRoundTripNewStreamParallel(b *testing.B) { benchBareParallel(b, true) }
