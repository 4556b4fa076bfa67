package transport

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"
)

// watchdog bounds the exchanges of one stream with a single timer, made
// once and reused for every exchange. quic-go implements a stream deadline
// with a new timer for every Read or Write that blocks, and a select on it;
// a migration blocks two or three times on each side, so deadlines cost a
// few timers per hop. The watchdog instead leaves the stream with no
// deadline and, only if an exchange overruns (or its caller gives up), sets
// one in the past, which wakes the blocked Read or Write exactly as an
// expired deadline would (os.ErrDeadlineExceeded).
//
// disarm waits for every callback that started, so none can reach into a
// later exchange.
type watchdog struct {
	qs    *quic.Stream
	t     *time.Timer
	fire  func() // w.expire, bound once so that arming allocates nothing
	fired atomic.Bool
	ran   chan struct{} // one token per finished callback (timer, ctx)
}

func newWatchdog(qs *quic.Stream) *watchdog {
	w := &watchdog{qs: qs, ran: make(chan struct{}, 2)}
	w.fire = w.expire
	w.t = time.AfterFunc(time.Hour, w.fire)
	w.t.Stop()
	return w
}

// arm bounds the exchange starting now to the earlier of d from now and
// ctx's deadline, and ends it early when ctx is canceled. Every arm is
// followed by one disarm with the returned stop.
func (w *watchdog) arm(ctx context.Context, d time.Duration) (stop func() bool) {
	if dl, ok := ctx.Deadline(); ok {
		d = min(d, time.Until(dl))
	}
	w.t.Reset(d)
	if ctx.Done() == nil {
		return nil
	}
	// Cancellation interrupts the stream the way a deadline does.
	return context.AfterFunc(ctx, w.fire)
}

func (w *watchdog) expire() {
	w.fired.Store(true)
	_ = w.qs.SetDeadline(time.Now())
	w.ran <- struct{}{}
}

// disarm ends the exchange's bound. If it fired, the stream's deadline is
// cleared again, so a stream whose exchange completed anyway (the answer
// arrived as the bound ran out) stays usable; one whose exchange failed is
// discarded by the caller regardless.
func (w *watchdog) disarm(stop func() bool) {
	started := 0
	if !w.t.Stop() {
		started++
	}
	if stop != nil && !stop() {
		started++
	}
	for range started {
		<-w.ran
	}
	if w.fired.Swap(false) {
		_ = w.qs.SetDeadline(time.Time{})
	}
}
