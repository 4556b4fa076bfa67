package engine

import (
	"context"
	"testing"

	"github.com/tsubame-rt/tsubame/lp"
	"github.com/tsubame-rt/tsubame/wasmhost"
)

// chains are the call chains A -> B -> C -> B -> A the benchmarks run: the
// WAT relay/echo modules (5 steps), and the Go SDK components chain-a ->
// chain-b -> chain-c (7 steps: chain-b calls chain-c twice).
var chains = []struct {
	name, target, kind, input string
	comps                     []string
}{
	{"wat", "a", "go", "b/c/0123456789abcdef", []string{"a=relay", "b=relay", "c=echo"}},
	{"go", "chain-a", "run", "0123456789abcdef", []string{"chain-a=chain-a", "chain-b=chain-b", "chain-c=chain-c"}},
}

// BenchmarkChain3 runs whole processes through a three-component chain with
// Engine.Run, one at a time (serial) and from GOMAXPROCS goroutines
// (parallel), and reports steps per second.
func BenchmarkChain3(b *testing.B) {
	for _, c := range chains {
		rt := newRuntime(b, wasmhost.NewConfig())
		e := newEngine(b, rt, Options{Node: "bench"}, c.comps...)
		once := func() int {
			p := lp.New("bench", c.target, c.kind, []byte(c.input))
			if err := e.Run(context.Background(), p); err != nil || p.Root().State != lp.StateDone {
				b.Fatalf("%v %+v", err, p.Root())
			}
			return len(p.Trace) + int(p.TraceDropped)
		}
		steps := once() // warm every pool
		b.Run(c.name+"/serial", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				once()
			}
			b.ReportMetric(float64(b.N*steps)/b.Elapsed().Seconds(), "steps/s")
		})
		b.Run(c.name+"/parallel", func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					once()
				}
			})
			b.ReportMetric(float64(b.N*steps)/b.Elapsed().Seconds(), "steps/s")
		})
	}
}
