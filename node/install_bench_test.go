package node

import (
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/tsubame-rt/tsubame/internal/testutil"
	"github.com/tsubame-rt/tsubame/lp"
)

// BenchmarkInstallToServe: the time from an install returning (the admin
// API's answer to PUT /v1/components/NAME?nodes=n2: n2 has fetched the
// 2 MiB Go module greet from n1 over QUIC, compiled and installed it) to
// the first LP served by n2, sent by an origin that routes from its
// membership view as a gateway does. Each iteration installs under a new
// name, so n2 is always a new holder. The baseline, measured in the same
// run, is one warm LP round trip to an installed component.
//
//	go test ./node -run '^$' -bench InstallToServe -benchtime 20x
func BenchmarkInstallToServe(b *testing.B) {
	ca := testCA(b)
	n1 := startNode(b, ca, hotConfig(b, "n1"), map[string]string{"warm": "greet.wasm"})
	n2 := startNode(b, ca, hotConfig(b, "n2", n1.GossipAddr()), nil)
	o := newOrigin(b, ca, "origin", n1.GossipAddr())
	testutil.WaitFor(b, "everyone to see everyone", func() bool {
		_, a := n1.cl.Peer("origin")
		_, c := n2.cl.Peer("origin")
		return a && c && len(o.cl.Holders("warm")) == 1
	})
	a := newAdminClient(b, ca, n1)
	greet := module(b, "greet.wasm")
	roundTrip := func(n string, target string) time.Duration {
		p := lp.New(o.name, target, "greet", []byte("x"))
		ch := o.expect(p.ID)
		start := time.Now()
		if err := o.tr.Send(b.Context(), n, p); err != nil {
			b.Fatal(err)
		}
		select {
		case got := <-ch:
			if got.Root().State != lp.StateDone {
				b.Fatalf("%s: %d %s", target, got.Root().ErrCode, got.Root().ErrMsg)
			}
		case <-time.After(10 * time.Second):
			b.Fatal("no reply")
		}
		return time.Since(start)
	}
	var warm []time.Duration
	for range 50 {
		warm = append(warm, roundTrip(n1.QUICAddr(), "warm"))
	}
	var installs, serves []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		name := fmt.Sprintf("g%d", i)
		start := time.Now()
		if code, body := a.do(b, http.MethodPut, "/v1/components/"+name+"?nodes=n2", greet); code != http.StatusOK {
			b.Fatalf("install: %d %s", code, body)
		}
		returned := time.Now()
		for len(o.cl.Holders(name)) == 0 {
			time.Sleep(100 * time.Microsecond)
		}
		roundTrip(n2.QUICAddr(), name)
		serves = append(serves, time.Since(returned))
		installs = append(installs, returned.Sub(start))
	}
	b.StopTimer()
	cold := installs[0] // n2 fetches the 2 MiB and compiles it; later ones find it loaded
	med := func(d []time.Duration) time.Duration { slices.Sort(d); return d[len(d)/2] }
	b.ReportMetric(float64(cold.Microseconds())/1000, "ms-first-install")
	b.ReportMetric(float64(med(serves).Microseconds())/1000, "ms-to-first-serve")
	b.ReportMetric(float64(med(installs).Microseconds())/1000, "ms-install")
	b.ReportMetric(float64(med(warm).Microseconds())/1000, "ms-warm-rtt")
	b.ReportMetric(float64(med(serves))/float64(med(warm)), "serve/warm")
}

// BenchmarkAutogrow: three nodes with auto-grow at its defaults (enabled),
// one holding a component whose steps take 20 ms of waiting (2 workers per
// node: 100 LPs/s per holder), 16 closed-loop clients. Reports throughput
// while only the first holder serves, the time from the load's start to the
// first LP served by an auto-installed holder (goal < 5 s), and throughput
// once it serves too. The default cooldown (10 s) spaces the second install,
// so "after" is with two holders.
//
//	go test ./node -run '^$' -bench Autogrow -benchtime 1x
func BenchmarkAutogrow(b *testing.B) {
	for i := 0; i < b.N; i++ {
		ca := testCA(b)
		grow := func(c Config) Config { c.Autogrow.Enabled = true; return c }
		const step = 20 * time.Millisecond
		n1 := startNodeOpts(b, ca, grow(hotConfig(b, "n1")), map[string]string{"slow": "echo.wasm"}, slowOpt("slow", step))
		n2 := startNodeOpts(b, ca, grow(hotConfig(b, "n2", n1.GossipAddr())), nil, slowOpt("slow", step))
		n3 := startNodeOpts(b, ca, grow(hotConfig(b, "n3", n1.GossipAddr())), nil, slowOpt("slow", step))
		o := newOrigin(b, ca, "origin", n1.GossipAddr())
		testutil.WaitFor(b, "everyone to see everyone", func() bool {
			return len(n1.cl.Peers()) == 3 && len(n2.cl.Peers()) == 3 && len(n3.cl.Peers()) == 3 && len(o.cl.Holders("slow")) == 1
		})
		ld := startLoad(b, o, "slow", 16)
		start := time.Now()
		deadline := start.Add(30 * time.Second)
		for ld.servedBy("n2")+ld.servedBy("n3") == 0 {
			if time.Now().After(deadline) {
				b.Fatal("no auto-installed holder served within 30s")
			}
			time.Sleep(5 * time.Millisecond)
		}
		grown := time.Now()
		time.Sleep(500 * time.Millisecond)
		mark := time.Now()
		time.Sleep(2 * time.Second)
		end := time.Now()
		ld.stop()
		before := ld.rate(start.Add(200*time.Millisecond), start.Add(1800*time.Millisecond))
		after := ld.rate(mark, end)
		b.ReportMetric(grown.Sub(start).Seconds(), "s-to-new-holder-serving")
		b.ReportMetric(before, "LPs/s-before")
		b.ReportMetric(after, "LPs/s-after")
		b.ReportMetric(after/before, "after/before")
		if len(ld.failed) > 0 {
			b.Errorf("%d LPs failed: %s", len(ld.failed), ld.failed[0])
		}
	}
}

// BenchmarkStepOverhead: what the hot-install bookkeeping (per-component
// statistics, the version clock on calls) adds to one step, against the
// bare engine in the same run.
//
//	go test ./node -run '^$' -bench StepOverhead
func BenchmarkStepOverhead(b *testing.B) {
	ca := testCA(b)
	n := startNode(b, ca, hotConfig(b, "n1"), map[string]string{"echo": "echo.wasm"})
	for _, s := range []struct {
		name string
		step stepper
	}{{"engine", n.eng}, {"hot", n.hot.Stepper()}} {
		b.Run(s.name, func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					p := lp.New("o", "echo", "get", []byte("x"))
					if _, err := s.step.Step(b.Context(), p); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}
