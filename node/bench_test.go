package node

import (
	"context"
	"fmt"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tsubame-rt/tsubame/internal/mesh/sched"
	"github.com/tsubame-rt/tsubame/internal/testutil"
	"github.com/tsubame-rt/tsubame/lp"
)

// paddedStep runs the real step (wasm) and then holds the worker until the
// step has taken d. It makes a node's capacity exactly workers/d whatever
// else the machine does: this box has 2 cores shared by every node of the
// benchmark, so CPU-bound steps would give every node the same capacity
// (the cores') and no policy could be told from another. A padded step is
// what an I/O-bound component looks like to the scheduler (the paper's
// renderer waiting on its cache).
type paddedStep struct {
	stepper
	d time.Duration
}

func (s paddedStep) Step(ctx context.Context, p *lp.Process) (lp.Step, error) {
	start := time.Now()
	st, err := s.stepper.Step(ctx, p)
	if rest := s.d - time.Since(start); rest > 0 {
		time.Sleep(rest)
	}
	return st, err
}

// noEngine holds nothing: the origin's runner only routes.
type noEngine struct{}

func (noEngine) Holds(string) bool { return false }
func (noEngine) Step(context.Context, *lp.Process) (lp.Step, error) {
	return lp.Step{}, fmt.Errorf("origin runs no steps")
}

const benchStep = 4 * time.Millisecond

// BenchmarkSchedulerQuality: three nodes, two with 4 workers and one with 1
// (a quarter), all holding the component; an origin (standing in for the
// gateway) picks the first node with the policy under test, and the nodes
// reschedule with it. Ideal throughput is the sum of capacities, 9 workers /
// 4 ms = 2250 LPs/s; "baseline" is one node with all 9 workers in the same
// run (no choice to make, same hops).
//
// closed: 36 clients, each sending its next LP when the last came back:
// the most the cluster sustains (lps/s, frac_ideal) and its latency.
// open: LPs arrive at a fixed 70% of the ideal rate whatever happens, as
// users would; latency is counted from the scheduled arrival, so a policy
// that lets one node's queue grow shows it in p99.
//
//	go test -run '^$' -bench SchedulerQuality -benchtime 6000x -count 5 ./node
func BenchmarkSchedulerQuality(b *testing.B) {
	for _, mode := range []string{"closed", "open"} {
		b.Run(mode, func(b *testing.B) {
			b.Run("baseline", func(b *testing.B) { benchScheduler(b, mode, sched.P2C, []int{9}) })
			for _, pol := range []string{sched.P2C, sched.WeightedRandom, sched.RoundRobin} {
				b.Run(pol, func(b *testing.B) { benchScheduler(b, mode, pol, []int{4, 4, 1}) })
			}
		})
	}
}

func benchScheduler(b *testing.B, mode, policy string, workers []int) {
	ca := testCA(b)
	var nodes []*Node
	var seed string
	total := 0
	for i, w := range workers {
		c := testConfig(fmt.Sprintf("n%d", i+1))
		if seed != "" {
			c.Seeds = []string{seed}
		}
		c.Workers = w
		c.Queue = 4096 // a stall of this shared machine must not turn into refusals
		c.Scheduler.Policy = policy
		n := startNodeOpts(b, ca, c, map[string]string{"echo": "echo.wasm"}, func(o *Options) {
			o.wrap = func(s stepper) stepper { return paddedStep{s, benchStep} }
		})
		if seed == "" {
			seed = n.GossipAddr()
		}
		nodes = append(nodes, n)
		total += w
	}
	o := newOrigin(b, ca, "origin", seed)
	sc := DefaultConfig().Scheduler
	sc.Policy = policy
	pick, err := newRunner("origin", sc, 1, newRunQueue(1), lp.DefaultLimits, noEngine{}, o.tr, o.cl, quiet)
	if err != nil {
		b.Fatal(err)
	}
	testutil.WaitFor(b, "the origin to see every node", func() bool { return len(o.cl.Holders("echo")) == len(nodes) })
	for _, n := range nodes {
		testutil.WaitFor(b, "nodes to see the origin", func() bool { _, ok := n.cl.Peer("origin"); return ok })
	}
	small := nodes[len(nodes)-1].Name()
	ideal := float64(total) / benchStep.Seconds()

	lat := make([]time.Duration, b.N)
	var failed, onSmall atomic.Int64
	// one sends LP i, which counts as started at t0, and waits for it.
	one := func(i int, t0 time.Time) {
		p := lp.New("origin", "echo", "get", []byte("x"))
		ch := o.expect(p.ID)
		if !pick.migrate(p, "echo", lp.MoveNotHeld) {
			failed.Add(1)
			return
		}
		select {
		case q := <-ch:
			if q.Root().State != lp.StateDone {
				failed.Add(1)
			}
			if len(q.Trace) > 0 && q.Trace[len(q.Trace)-1].Node == small {
				onSmall.Add(1)
			}
		case <-time.After(10 * time.Second):
			failed.Add(1)
		}
		lat[i] = time.Since(t0)
	}
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	switch mode {
	case "closed":
		var next atomic.Int64
		for range 4 * total { // enough to keep every worker busy and queues non-empty
			wg.Go(func() {
				for i := int(next.Add(1)) - 1; i < b.N; i = int(next.Add(1)) - 1 {
					one(i, time.Now())
				}
			})
		}
	case "open":
		gap := time.Duration(float64(time.Second) / (0.7 * ideal))
		for i := range b.N {
			at := start.Add(time.Duration(i) * gap)
			time.Sleep(time.Until(at))
			wg.Go(func() { one(i, at) })
		}
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	if f := failed.Load(); f > 0 {
		b.Fatalf("%d of %d LPs failed or were lost", f, b.N)
	}
	// A node counts a send once it is acknowledged, which may be just after
	// the origin has the LP: wait for the counts to settle.
	var nodeSends uint64
	testutil.WaitFor(b, "send counts to settle", func() bool {
		nodeSends = 0
		for _, n := range nodes {
			nodeSends += n.run.out.Load()
		}
		return nodeSends >= uint64(b.N)
	})
	if os.Getenv("TSUBAME_BENCH_DEBUG") != "" {
		for _, n := range nodes {
			b.Logf("%s: workers %d accepted %d sent %d", n.Name(), n.cfg.Workers, n.run.in.Load(), n.run.out.Load())
		}
	}
	rate := float64(b.N) / elapsed.Seconds()
	slices.Sort(lat)
	b.ReportMetric(float64(nodeSends-uint64(b.N))/float64(b.N), "hops/lp")
	b.ReportMetric(float64(onSmall.Load())/float64(b.N), "frac_on_small")
	b.ReportMetric(rate, "lps/s")
	b.ReportMetric(rate/ideal, "frac_ideal")
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50_ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99_ms")
}
