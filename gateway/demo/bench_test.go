package demo

import (
	"context"
	"net"
	"net/http"
	"runtime"
	"sync"
	"testing"
	"time"
)

// BenchmarkHello measures GET /hello?name=bench end to end: through the
// gateway and a demo cluster of 1 and 3 nodes (hello -> greet -> hello, every
// hop a QUIC migration when there are several nodes), and through a plain
// net/http handler doing the same string work, in the same run. It reports
// requests/s and the p99 latency of the run.
//
//	go test -run '^$' -bench Hello -benchtime 5s ./gateway/demo
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
		name  string
		nodes int
	}{{"nodes=1", 1}, {"nodes=3", 3}} {
		b.Run(n.name, func(b *testing.B) {
			d, err := Start(context.Background(), Config{Nodes: n.nodes, HTTP: "127.0.0.1:0"})
			if err != nil {
				b.Fatal(err)
			}
			defer d.Close()
			benchHello(b, d.URL())
		})
	}
}

// benchConcurrency is the number of clients: b.SetParallelism multiplies
// GOMAXPROCS, so the figure is comparable across machines only per core.
const benchConcurrency = 16

func benchHello(b *testing.B, base string) {
	client := NewClient(benchConcurrency * 4)
	defer client.CloseIdleConnections()
	url, want := base+"/hello?name=bench", "Hello, bench!"
	if err := fetch(context.Background(), client, url, want); err != nil {
		b.Fatal(err)
	}
	var mu sync.Mutex
	var all []time.Duration
	b.SetParallelism(max(1, benchConcurrency/runtime.GOMAXPROCS(0)))
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		lat := make([]time.Duration, 0, 1024)
		for pb.Next() {
			t0 := time.Now()
			if err := fetch(context.Background(), client, url, want); err != nil {
				b.Error(err)
				return
			}
			lat = append(lat, time.Since(t0))
		}
		mu.Lock()
		all = append(all, lat...)
		mu.Unlock()
	})
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(len(all))/elapsed.Seconds(), "req/s")
	b.ReportMetric(float64(Percentile(all, 99).Microseconds()), "p99-µs")
}
