// Package loadgen is Tsubame's one load generator: closed-loop clients or
// an open-loop arrival rate, every result counted into fixed-interval
// samples (requests/s, p50, p99, errors, what the caller tags), with the
// generator's own timer lag recorded so a stalled machine can be told from
// a stalled system under test. `tsubame bench` and the evaluation harness
// (internal/evalharness) drive it.
//
// It never decides what a correct answer is: the caller's Func does, and
// reports anything else as an error.
package loadgen

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Result is one request's outcome, as the caller's Func judged it.
type Result struct {
	// Err is "" when the request was answered correctly.
	Err string
	// Latency is how long the request took. An open-loop run replaces it
	// with the time from the request's scheduled arrival, so a stalled
	// system cannot hide its queue (coordinated omission).
	Latency time.Duration
	// Resent marks an answer that took more than one attempt.
	Resent bool
	// Tag, if not "", is counted per sample (e.g. the node that did the
	// work).
	Tag string
}

// Func sends request number i and judges the answer. A Func must honour
// ctx: the generator cancels it at the end of a run, and results of
// requests cut off that way are not counted.
type Func func(ctx context.Context, i int) Result

// Config says how to load.
type Config struct {
	// Concurrency is the number of closed-loop clients, each sending its
	// next request when the last is answered. In an open-loop run it bounds
	// the requests in flight: an arrival over the bound fails at once
	// ("overloaded") rather than queueing inside the generator.
	Concurrency int
	// Rate, if > 0, makes the run open-loop: requests arrive at this many
	// per second whatever the answers take.
	Rate float64
	// Requests, if > 0, ends the run after this many requests were sent.
	Requests int
	// First is the number of the first request (Func's i).
	First int
	// Interval is the sample length (default 250ms).
	Interval time.Duration
}

// DefaultInterval is the sample length when Config.Interval is 0.
const DefaultInterval = 250 * time.Millisecond

// maxInFlight bounds an open-loop run's requests in flight when
// Concurrency is 0.
const maxInFlight = 4096

// Check returns what is wrong with c, or nil.
func (c Config) Check() error {
	switch {
	case c.Concurrency < 0 || c.Concurrency > 1<<16:
		return fmt.Errorf("concurrency %d: want 0 to %d", c.Concurrency, 1<<16)
	case c.Rate <= 0 && c.Concurrency == 0:
		return fmt.Errorf("neither clients (concurrency) nor an arrival rate")
	case c.Rate < 0 || c.Rate > 1e6:
		return fmt.Errorf("rate %g: want 0 to 1e6 per second", c.Rate)
	case c.Requests < 0:
		return fmt.Errorf("requests %d: want 0 or more", c.Requests)
	case c.Interval != 0 && (c.Interval < time.Millisecond || c.Interval > time.Minute):
		return fmt.Errorf("interval %s: want 1ms to 1m", c.Interval)
	}
	return nil
}

// Gen is a running load.
type Gen struct {
	// Series receives every result; read it once Stop returned.
	Series *Series
	cancel context.CancelFunc
	done   chan struct{}
	ended  time.Duration // when done closed, on the series' clock
	lagged chan struct{}
	stop   sync.Once
}

// Start starts loading with do until ctx ends, Stop is called or
// c.Requests were sent. It returns an error only for a bad Config.
func Start(ctx context.Context, c Config, do Func) (*Gen, error) {
	if err := c.Check(); err != nil {
		return nil, fmt.Errorf("loadgen: %w", err)
	}
	if c.Interval == 0 {
		c.Interval = DefaultInterval
	}
	ctx, cancel := context.WithCancel(ctx)
	g := &Gen{Series: newSeries(c.Interval), cancel: cancel, done: make(chan struct{}), lagged: make(chan struct{})}
	go func() {
		if c.Rate > 0 {
			openLoop(ctx, c, do, g.Series)
		} else {
			closedLoop(ctx, c, do, g.Series)
		}
		g.ended = g.Series.Since()
		close(g.done)
	}()
	go func() {
		defer close(g.lagged)
		g.Series.watchLag(g.done)
	}()
	return g, nil
}

// Done is closed when the run has ended by itself (c.Requests sent and
// answered, or ctx done).
func (g *Gen) Done() <-chan struct{} { return g.done }

// Stop ends the run, waits for its clients, and returns the series: cut
// to the whole intervals the run covered, or, when the run had ended by
// itself, ending with its last answer.
func (g *Gen) Stop() *Series {
	g.stop.Do(func() {
		end := g.Series.Since()
		byItself := false
		select {
		case <-g.done:
			end, byItself = g.ended, true
		default:
		}
		g.cancel()
		<-g.done
		<-g.lagged
		g.Series.finish(end, !byItself)
	})
	return g.Series
}

// Run loads until ctx ends, d has passed (if > 0) or c.Requests were
// sent and answered, and returns the series.
func Run(ctx context.Context, c Config, d time.Duration, do Func) (*Series, error) {
	g, err := Start(ctx, c, do)
	if err != nil {
		return nil, err
	}
	var timeout <-chan time.Time
	if d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		timeout = t.C
	}
	select {
	case <-g.Done():
	case <-timeout:
	case <-ctx.Done():
	}
	return g.Stop(), ctx.Err()
}

// numbers hands out request numbers, up to c.Requests of them.
type numbers struct {
	next  atomic.Int64
	first int
	limit int
}

func (n *numbers) take() (int, bool) {
	i := int(n.next.Add(1)) - 1
	if n.limit > 0 && i >= n.limit {
		return 0, false
	}
	return n.first + i, true
}

func closedLoop(ctx context.Context, c Config, do Func, s *Series) {
	nums := &numbers{first: c.First, limit: c.Requests}
	var wg sync.WaitGroup
	for range c.Concurrency {
		wg.Go(func() {
			for ctx.Err() == nil {
				i, ok := nums.take()
				if !ok {
					return
				}
				r := do(ctx, i)
				if ctx.Err() != nil {
					return // cut off by the end of the run: not a measurement
				}
				s.add(r)
			}
		})
	}
	wg.Wait()
}

// openLoop sends request k at start + k/rate, each on its own goroutine.
func openLoop(ctx context.Context, c Config, do Func, s *Series) {
	limit := c.Concurrency
	if limit == 0 {
		limit = maxInFlight
	}
	slots := make(chan struct{}, limit)
	var wg sync.WaitGroup
	defer wg.Wait()
	start := time.Now()
	period := time.Duration(float64(time.Second) / c.Rate)
	t := time.NewTimer(0)
	defer t.Stop()
	for k := 0; c.Requests == 0 || k < c.Requests; k++ {
		due := start.Add(time.Duration(k) * period)
		if wait := time.Until(due); wait > 0 {
			t.Reset(wait)
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		} else if ctx.Err() != nil {
			return
		}
		select {
		case slots <- struct{}{}:
		default:
			s.add(Result{Err: fmt.Sprintf("overloaded: %d requests in flight", limit)})
			continue
		}
		wg.Go(func() {
			defer func() { <-slots }()
			r := do(ctx, c.First+k)
			if ctx.Err() != nil {
				return
			}
			r.Latency = time.Since(due)
			s.add(r)
		})
	}
}
