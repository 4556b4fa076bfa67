package loadgen

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"
)

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

// Get returns a Func that sends GET url and wants 200 with body want.
func Get(client *http.Client, url, want string) Func {
	return func(ctx context.Context, _ int) Result {
		start := time.Now()
		if err := fetch(ctx, client, url, want); err != nil {
			return Result{Err: err.Error()}
		}
		return Result{Latency: time.Since(start)}
	}
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
		return fmt.Errorf("%d %q", res.StatusCode, b[:min(len(b), 200)])
	}
	return nil
}
