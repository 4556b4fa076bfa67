package democluster

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tsubame-rt/tsubame/internal/obs"

	"github.com/tsubame-rt/tsubame/internal/cputime"
	"github.com/tsubame-rt/tsubame/internal/loadgen"
)

// BenchmarkHello measures GET /hello?name=bench end to end: through a demo
// cluster of 1 and 3 nodes with the gateway embedded in node-1 (spread:
// hello -> greet -> hello, every hop a QUIC migration when there are several
// nodes; all: every node holds both), the same with a standalone gateway,
// and through a plain net/http handler doing the same string work, in the
// same run. It reports requests/s, the p99 latency of the run and the CPU
// per request of the whole process (client included).
//
//	go test -run '^$' -bench Hello -benchtime 5000x ./internal/democluster
func BenchmarkHello(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	plain := &http.Server{Handler: http.HandlerFunc(PlainHello)}
	go plain.Serve(ln)
	defer plain.Close()
	b.Run("plain", func(b *testing.B) { benchHello(b, "http://"+ln.Addr().String()) })
	for _, n := range []struct {
		name       string
		nodes      int
		placement  string
		standalone bool
	}{
		{"nodes=1", 1, "spread", false}, {"nodes=3", 3, "spread", false}, {"nodes=3/all", 3, "all", false},
		{"standalone/nodes=1", 1, "spread", true}, {"standalone/nodes=3", 3, "spread", true},
	} {
		b.Run(n.name, func(b *testing.B) {
			app, err := PlacedApp(n.placement)
			if err != nil {
				b.Fatal(err)
			}
			d, err := Start(context.Background(), Config{Nodes: n.nodes, HTTP: "127.0.0.1:0", App: app, Embed: !n.standalone})
			if err != nil {
				b.Fatal(err)
			}
			defer d.Close()
			benchHello(b, d.URL())
		})
	}
}

// benchConcurrency is the number of closed-loop clients.
const benchConcurrency = 16

func benchHello(b *testing.B, base string) {
	client := loadgen.NewClient(benchConcurrency)
	defer client.CloseIdleConnections()
	do := loadgen.Get(client, base+"/hello?name=bench", "Hello, bench!")
	if r := do(context.Background(), 0); r.Err != "" {
		b.Fatal(r.Err)
	}
	b.ResetTimer()
	cpu := cputime.Start()
	start := time.Now()
	s, err := loadgen.Run(context.Background(), loadgen.Config{Concurrency: benchConcurrency, Requests: b.N, Interval: time.Minute}, 0, do)
	elapsed := time.Since(start)
	b.StopTimer()
	if err != nil {
		b.Fatal(err)
	}
	if _, failed, _ := s.Totals(); failed > 0 {
		b.Fatalf("%d requests failed (first: %s)", failed, s.FirstErr())
	}
	cpu.Report(b, b.N)
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "req/s")
	b.ReportMetric(float64(loadgen.Percentile(s.Latencies(), 99).Microseconds()), "p99-µs")
}

// BenchmarkHelloObs is the cost of observing /hello: the same cluster (3
// nodes, gateway embedded in node-1, hello -> greet -> hello across nodes)
// with metrics, spans and journey rings off (the baseline), with metrics on
// and tracing off (the default), and with tracing sampled at 1% and 100%,
// exported over OTLP/HTTP to a local endpoint that reads and drops each
// batch. Compare req/s and CPU per request within one run:
//
//	go test -run '^$' -bench HelloObs -benchtime 20000x ./internal/democluster
func BenchmarkHelloObs(b *testing.B) {
	var exported atomic.Int64
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		exported.Add(n)
		w.WriteHeader(http.StatusOK)
	}))
	defer sink.Close()
	ratio := func(r float64) *float64 { return &r }
	for _, v := range []struct {
		name string
		off  bool
		tr   obs.TraceConfig
	}{
		{name: "off", off: true},
		{name: "metrics"},
		{name: "trace=1%", tr: obs.TraceConfig{Endpoint: sink.URL + "/v1/traces", Sample: ratio(0.01)}},
		{name: "trace=100%", tr: obs.TraceConfig{Endpoint: sink.URL + "/v1/traces", Sample: ratio(1)}},
	} {
		b.Run(v.name, func(b *testing.B) {
			d, err := Start(context.Background(), Config{Nodes: 3, HTTP: "127.0.0.1:0", Embed: true,
				NoObservability: v.off, Tracing: v.tr})
			if err != nil {
				b.Fatal(err)
			}
			defer d.Close()
			before := exported.Load()
			benchHello(b, d.URL())
			b.ReportMetric(float64(exported.Load()-before)/float64(b.N), "otlp-B/req")
		})
	}
}
