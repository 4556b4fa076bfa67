package democluster

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tsubame-rt/tsubame/components-src/go/img-convert/imaging"
	"github.com/tsubame-rt/tsubame/components-src/go/img-front/imgspec"
	"github.com/tsubame-rt/tsubame/internal/imgsamples"
)

// loadRun sends n requests from conc goroutines (request i to url(i)) and
// reports requests per second and the 99th percentile latency.
func loadRun(b *testing.B, client *http.Client, n, conc int, url func(i int) string) {
	b.Helper()
	lat := make([]time.Duration, n)
	var next, failed atomic.Int64
	start := time.Now()
	var wg sync.WaitGroup
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				t0 := time.Now()
				res, err := client.Get(url(i))
				if err == nil {
					_, _ = io.Copy(io.Discard, res.Body)
					res.Body.Close()
					if res.StatusCode != 200 {
						err = fmt.Errorf("%s", res.Status)
					}
				}
				if err != nil {
					failed.Add(1)
				}
				lat[i] = time.Since(t0)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if f := failed.Load(); f > 0 {
		b.Errorf("%d of %d requests failed", f, n)
	}
	slices.Sort(lat)
	b.ReportMetric(float64(n)/elapsed.Seconds(), "req/s")
	b.ReportMetric(float64(lat[n*99/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(0, "ns/op")
}

// plainImages is the baseline: one net/http server doing the image
// service's work with the same code (imaging.Convert), originals and
// variants in maps.
func plainImages(b *testing.B, originals map[string][]byte) string {
	var mu sync.Mutex
	cache := map[string][]byte{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := r.URL.Path[len("/img/"):]
		v, err := imgspec.ParseQuery(name, r.URL.RawQuery)
		if err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		mu.Lock()
		img, ok := cache[v.String()]
		mu.Unlock()
		if !ok {
			orig, found := originals[name]
			if !found {
				http.Error(w, "no image", 404)
				return
			}
			if img, err = imaging.Convert(orig, v.W, v.H, v.Fmt, imgspec.JPEGQuality, imgspec.MaxPixels); err != nil {
				http.Error(w, err.Error(), 415)
				return
			}
			mu.Lock()
			cache[v.String()] = img
			mu.Unlock()
		}
		w.Header().Set("Content-Type", v.ContentType())
		w.Write(img)
	})}
	go srv.Serve(ln)
	b.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String()
}

// BenchmarkImageLoad: requests per second and p99 of the image service,
// cache hits (one variant over and over) and misses (a new width every
// request, so every request converts the 1 MiB original), on 1 and 3 nodes
// (gateway inside node-1), beside a plain net/http server doing the same
// work with the same code. Every member shares this machine's cores.
//
//	go test -run '^$' -bench ImageLoad -benchtime 1x ./internal/democluster
func BenchmarkImageLoad(b *testing.B) {
	const hits, hitConc, misses, missConc = 400, 16, 24, 4
	large := imgsamples.Large()
	client := &http.Client{Timeout: 5 * time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: 32}}
	run := func(b *testing.B, base string, widthFrom int) {
		b.Run("hit", func(b *testing.B) {
			url := base + "/img/large.jpg?w=160&fmt=jpeg"
			loadRun(b, client, 4, 1, func(int) string { return url }) // warm: the first is a miss
			loadRun(b, client, hits, hitConc, func(int) string { return url })
		})
		b.Run("miss", func(b *testing.B) {
			loadRun(b, client, misses, missConc, func(i int) string {
				return base + "/img/large.jpg?fmt=jpeg&w=" + strconv.Itoa(widthFrom+i)
			})
		})
	}
	b.Run("plain", func(b *testing.B) {
		run(b, plainImages(b, map[string][]byte{"large.jpg": large}), 200)
	})
	for _, nodes := range []int{1, 3} {
		b.Run(fmt.Sprintf("tsubame-%d", nodes), func(b *testing.B) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
			defer cancel()
			d, err := Start(ctx, Config{Nodes: nodes, HTTP: "127.0.0.1:0", App: ImagesApp(), Embed: true})
			if err != nil {
				b.Fatal(err)
			}
			defer d.Close()
			res, err := client.Do(must(http.NewRequest("PUT", d.URL()+"/img/large.jpg", bytes.NewReader(large))))
			if err != nil || res.StatusCode != 201 {
				b.Fatalf("upload: %v %v", err, res)
			}
			res.Body.Close()
			run(b, d.URL(), 200)
		})
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
