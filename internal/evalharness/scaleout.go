package evalharness

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/tsubame-rt/tsubame/internal/loadgen"
)

// ScaleRow is one cluster size of the scale-out scenario.
type ScaleRow struct {
	Nodes    int
	Elapsed  time.Duration
	OK       int
	Failed   int
	FirstErr string
	Hits     int // answered from the cache
	Resent   int
	P50, P99 time.Duration
	// RendersOn counts renders by the node that did them.
	RendersOn map[string]int
	// Model is the capacity model's account (nil without a hold).
	Model *Model
	// Series is the run's samples.
	Series *loadgen.Series
}

// PerSecond is the rate of correct answers.
func (r ScaleRow) PerSecond() float64 { return float64(r.OK) / r.Elapsed.Seconds() }

// ModelTime is how long the run takes if every render holds a worker for
// the hold and nothing else costs anything (0 without a hold).
func (r ScaleRow) ModelTime(o Options) time.Duration {
	if o.Capacity() == 0 {
		return 0
	}
	return time.Duration(float64(r.OK-r.Hits) / (float64(r.Nodes) * o.Capacity()) * float64(time.Second))
}

// Scaleout sends the same requests (numbered 0 to requests-1) to a fresh
// cluster of each size and reports how long each took. progress gets a
// line as each cluster starts.
func Scaleout(ctx context.Context, o Options, sizes []int, requests int, progress io.Writer) ([]ScaleRow, error) {
	if err := o.Check(); err != nil {
		return nil, err
	}
	var rows []ScaleRow
	for _, n := range sizes {
		fmt.Fprintf(progress, "starting %d node(s)...\n", n)
		c, err := startCluster(ctx, o, n)
		if err != nil {
			return rows, err
		}
		row, err := scaleOnce(ctx, o, c, requests)
		c.stop()
		if err != nil {
			return rows, err
		}
		row.Nodes, row.Model = n, c.model
		rows = append(rows, row)
	}
	return rows, nil
}

func scaleOnce(ctx context.Context, o Options, c *cluster, n int) (ScaleRow, error) {
	q := newRequests(o, c.URL())
	defer q.client.CloseIdleConnections()
	if err := q.warm(ctx, o.Concurrency); err != nil {
		return ScaleRow{}, err
	}
	s, err := runRequests(ctx, o, q, 0, n)
	if err != nil {
		return ScaleRow{}, err
	}
	row := ScaleRow{Elapsed: s.End(), FirstErr: s.FirstErr(), RendersOn: s.Tags(), Series: s}
	row.OK, row.Failed, row.Resent = s.Totals()
	for _, k := range row.RendersOn {
		row.Hits -= k
	}
	row.Hits += row.OK
	lat := s.Latencies()
	row.P50, row.P99 = loadgen.Percentile(lat, 50), loadgen.Percentile(lat, 99)
	return row, nil
}

// runRequests sends requests first to first+n-1 through q, closed-loop.
func runRequests(ctx context.Context, o Options, q *requests, first, n int) (*loadgen.Series, error) {
	g, err := loadgen.Start(ctx, loadgen.Config{Concurrency: o.Concurrency, Requests: n, First: first, Interval: o.interval()}, q.do)
	if err != nil {
		return nil, err
	}
	if o.Progress != nil {
		defer g.Progress(o.Progress, o.label)()
	}
	select {
	case <-g.Done():
	case <-ctx.Done():
	}
	return g.Stop(), ctx.Err()
}
