package node

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tsubame-rt/tsubame/lp"
	"github.com/tsubame-rt/tsubame/node/sched"
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
// (a quarter), all holding the component; a closed loop of clients sends
// one-step LPs from an origin that picks the first node with the policy
// under test, and the nodes reschedule with it. Ideal throughput is the
// sum of capacities, 9 workers / 4 ms = 2250 LPs/s; "baseline" is one node
// with all 9 workers in the same run (no scheduling choice at all).
//
//	go test -run '^$' -bench SchedulerQuality -benchtime 4000x -count 3 ./node
func BenchmarkSchedulerQuality(b *testing.B) {
	b.Run("baseline", func(b *testing.B) { benchScheduler(b, sched.P2C, []int{9}) })
	for _, pol := range []string{sched.P2C, sched.WeightedRandom, sched.RoundRobin} {
		b.Run(pol, func(b *testing.B) { benchScheduler(b, pol, []int{4, 4, 1}) })
	}
}

func benchScheduler(b *testing.B, policy string, workers []int) {
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
	pick, err := newRunner("origin", sc, 1, 1, lp.DefaultLimits, noEngine{}, o.tr, o.cl, quiet)
	if err != nil {
		b.Fatal(err)
	}
	waitFor(b, "the origin to see every node", func() bool { return len(o.cl.Holders("echo")) == len(nodes) })
	for _, n := range nodes {
		waitFor(b, "nodes to see the origin", func() bool { _, ok := n.cl.Peer("origin"); return ok })
	}

	clients := 4 * total // enough to keep every worker busy and queues non-empty
	var next atomic.Int64
	lat := make([]time.Duration, b.N)
	var failed, onLast atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for range clients {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= b.N {
					return
				}
				t0 := time.Now()
				p := lp.New("origin", "echo", "get", []byte("x"))
				ch := o.expect(p.ID)
				if !pick.migrate(p, "echo") {
					failed.Add(1)
					continue
				}
				select {
				case q := <-ch:
					if q.Root().State != lp.StateDone {
						failed.Add(1)
					}
					if len(q.Trace) > 0 && q.Trace[len(q.Trace)-1].Node == nodes[len(nodes)-1].Name() {
						onLast.Add(1)
					}
				case <-time.After(10 * time.Second):
					failed.Add(1)
				}
				lat[i] = time.Since(t0)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	if f := failed.Load(); f > 0 {
		b.Fatalf("%d of %d LPs failed or were lost", f, b.N)
	}
	ideal := float64(total) / benchStep.Seconds()
	rate := float64(b.N) / elapsed.Seconds()
	slices.Sort(lat)
	var nodeSends uint64
	for _, n := range nodes {
		nodeSends += n.run.out.Load()
	}
	b.ReportMetric(float64(nodeSends-uint64(b.N))/float64(b.N), "hops/lp")
	b.ReportMetric(float64(onLast.Load())/float64(b.N), "frac_on_small")
	b.ReportMetric(rate, "lps/s")
	b.ReportMetric(rate/ideal, "frac_ideal")
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50_ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99_ms")
}
