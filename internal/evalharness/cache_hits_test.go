package evalharness

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/tsubame-rt/tsubame/internal/democluster"
	"github.com/tsubame-rt/tsubame/node/kv"
)

// BenchmarkCacheHits is the paper's second series in miniature: 400
// requests drawn at random from 50 distinct formulas, 8 at a time, on 1 to 4
// nodes, with formula-cache's shared bucket (one store for the cluster)
// against its per-instance fallback (no grant). A hit is a request whose
// trace has one step (formula-cache answered without calling
// formula-logic). It reports the hit rate; the first 50 requests can at
// best all miss, so a shared cache tends to 350/400 = 0.875 at most.
//
//	go test ./internal/evalharness -run '^$' -bench CacheHits -benchtime 1x
func BenchmarkCacheHits(b *testing.B) {
	for nodes := 1; nodes <= 4; nodes++ {
		for _, mode := range []struct {
			name string
			kv   kv.Config
		}{{"shared", SharedCache}, {"per-instance", kv.Config{}}} {
			b.Run(fmt.Sprintf("nodes=%d/%s", nodes, mode.name), func(b *testing.B) {
				app := App
				app.KV = mode.kv
				ctx := context.Background()
				d, err := democluster.Start(ctx, democluster.Config{Nodes: nodes, HTTP: "127.0.0.1:0", App: &app, Workers: 2})
				if err != nil {
					b.Fatal(err)
				}
				defer d.Close()
				var hits, total atomic.Int64
				for range b.N {
					hits.Add(int64(cacheRun(b, d.URL(), 400, 50)))
					total.Add(400)
				}
				b.ReportMetric(float64(hits.Load())/float64(total.Load()), "hit-rate")
			})
		}
	}
}

// cacheRun sends n requests for formulas drawn from a set of distinct ones,
// 8 at a time, and returns how many were cache hits.
func cacheRun(b *testing.B, base string, n, distinct int) int {
	var hits, next atomic.Int64
	var wg sync.WaitGroup
	client := &http.Client{}
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 12))
			for next.Add(1) <= int64(n) {
				f := Formula(1, r.IntN(distinct))
				res, err := client.Post(base+Route.Path, "text/plain", strings.NewReader(f))
				if err != nil {
					b.Error(err)
					return
				}
				_, _ = io.Copy(io.Discard, res.Body)
				res.Body.Close()
				if res.StatusCode != 200 {
					b.Errorf("%s: %d", f, res.StatusCode)
					return
				}
				if len(strings.Fields(res.Header.Get("Tsubame-Trace"))) == 1 {
					hits.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	return int(hits.Load())
}
