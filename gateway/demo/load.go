package demo

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"time"
)

// LoadResult is what one closed-loop load run measured.
type LoadResult struct {
	Requests int // answered with the expected body
	Errors   int // anything else
	Elapsed  time.Duration
	P50, P99 time.Duration
	FirstErr string
}

// PerSecond is the rate of correct answers.
func (r LoadResult) PerSecond() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Requests) / r.Elapsed.Seconds()
}

// Load runs concurrency clients, each sending GET url and waiting for the
// answer before the next, for d; an answer other than 200 with body want is
// an error. Latencies are taken per request.
func Load(ctx context.Context, client *http.Client, url, want string, concurrency int, d time.Duration) LoadResult {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var (
		mu       sync.Mutex
		all      []time.Duration
		errs     int
		firstErr string
		wg       sync.WaitGroup
	)
	start := time.Now()
	for range concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lat := make([]time.Duration, 0, 1024)
			var bad int
			var badMsg string
			for ctx.Err() == nil {
				t0 := time.Now()
				err := fetch(ctx, client, url, want)
				if ctx.Err() != nil {
					break // cut off by the end of the run: not a measurement
				}
				if err != nil {
					bad++
					badMsg = err.Error()
					continue
				}
				lat = append(lat, time.Since(t0))
			}
			mu.Lock()
			all = append(all, lat...)
			errs += bad
			if firstErr == "" {
				firstErr = badMsg
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	r := LoadResult{Requests: len(all), Errors: errs, Elapsed: time.Since(start), FirstErr: firstErr}
	r.P50, r.P99 = Percentile(all, 50), Percentile(all, 99)
	return r
}

func fetch(ctx context.Context, client *http.Client, url, want string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	res, err := client.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return err
	}
	if res.StatusCode != http.StatusOK || string(b) != want {
		return fmt.Errorf("%d %q", res.StatusCode, b)
	}
	return nil
}

// Percentile returns the p-th percentile (nearest rank) of ds; it sorts ds.
func Percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	slices.Sort(ds)
	i := int(float64(len(ds))*p/100+0.5) - 1
	return ds[min(max(i, 0), len(ds)-1)]
}

// PlainHello is the baseline the gateway is measured against: the demo's
// string work ("Hello, " + name + "!") in a plain net/http handler.
func PlainHello(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	io.WriteString(w, "Hello, "+r.URL.Query().Get("name")+"!")
}

// NewClient is an HTTP/1.1 client keeping one connection per concurrent
// request, as a load generator should.
func NewClient(concurrency int) *http.Client {
	return &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			MaxIdleConns:        concurrency,
			MaxIdleConnsPerHost: concurrency,
			DisableCompression:  true,
		},
	}
}
