package transport

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/tsubame-rt/tsubame/lp"
)

// A watchdog that fires interrupts a blocked read the way a deadline does,
// and once disarmed leaves the stream with no deadline: the next exchange on
// it succeeds.
func TestWatchdogFiresThenStreamIsReusable(t *testing.T) {
	a, c, s := pooledStream(t)
	// The peer waits for a request, so nothing arrives: the read blocks
	// until the watchdog fires.
	stop := s.w.arm(context.Background(), 10*time.Millisecond)
	if _, err := s.r.ReadByte(); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("blocked read: %v, want os.ErrDeadlineExceeded", err)
	}
	s.w.disarm(stop)
	p := testLP(64)
	frame, err := p.AppendBinary(nil)
	if err != nil {
		t.Fatal(err)
	}
	stop = s.w.arm(context.Background(), time.Minute)
	_, keep, err := a.exchangeOn(ctxT(t), c, s, p.ID, appendFrame(nil, frameLP, frame))
	s.w.disarm(stop)
	if err != nil || !keep {
		t.Fatalf("exchange after the watchdog fired: keep %v, err %v", keep, err)
	}
}

// Canceling the caller's context interrupts the exchange; a disarmed
// watchdog's callbacks never reach a later exchange.
func TestWatchdogCancel(t *testing.T) {
	_, _, s := pooledStream(t)
	ctx, cancel := context.WithCancel(context.Background())
	stop := s.w.arm(ctx, time.Minute)
	go cancel()
	if _, err := s.r.ReadByte(); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("blocked read: %v, want os.ErrDeadlineExceeded", err)
	}
	s.w.disarm(stop)
	// Arm and disarm many times with bounds that expire around the disarm:
	// afterwards the stream must have no deadline left.
	for i := range 200 {
		stop := s.w.arm(context.Background(), time.Duration(i%3)*time.Microsecond)
		s.w.disarm(stop)
	}
	if s.w.fired.Load() {
		t.Fatal("fired still set after disarm")
	}
	if len(s.w.ran) != 0 {
		t.Fatalf("%d callback tokens left over", len(s.w.ran))
	}
}

// pooledStream connects a sender to a receiver that acknowledges every LP
// and checks out one stream, as an exchange would.
func pooledStream(t *testing.T) (*Transport, *conn, *stream) {
	ca := testCA(t)
	a, b := start(t, ca, "a", nil), start(t, ca, "b", HandlerFunc(func(context.Context, string, *lp.Process) error { return nil }))
	c, err := a.connTo(ctxT(t), b.Addr())
	if err != nil {
		t.Fatal(err)
	}
	s, err := a.getStream(ctxT(t), c)
	if err != nil {
		t.Fatal(err)
	}
	return a, c, s
}
