package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tsubame-rt/tsubame/internal/testutil"
)

// TestClosedLoopRequests: a bounded run sends each number once, from First,
// and counts every result, failures and tags included.
func TestClosedLoopRequests(t *testing.T) {
	var mu sync.Mutex
	seen := map[int]int{}
	do := func(_ context.Context, i int) Result {
		mu.Lock()
		seen[i]++
		mu.Unlock()
		if i%10 == 0 {
			return Result{Err: fmt.Sprintf("bad %d", i)}
		}
		return Result{Latency: time.Duration(i) * time.Microsecond, Tag: fmt.Sprintf("node-%d", i%3), Resent: i%7 == 0}
	}
	s, err := Run(t.Context(), Config{Concurrency: 4, Requests: 100, First: 1000}, 0, do)
	if err != nil {
		t.Fatal(err)
	}
	if len(seen) != 100 {
		t.Fatalf("%d distinct numbers sent, want 100", len(seen))
	}
	for i := 1000; i < 1100; i++ {
		if seen[i] != 1 {
			t.Fatalf("number %d sent %d times", i, seen[i])
		}
	}
	// A run that ended by itself keeps its last, short interval.
	ok, failed, resent := s.Totals()
	if ok != 90 || failed != 10 || resent != 14 {
		t.Fatalf("totals ok %d failed %d resent %d", ok, failed, resent)
	}
	tags := s.Tags()
	sum := 0
	for _, n := range tags {
		sum += n
	}
	if sum != ok {
		t.Fatalf("tags count %d answers, want %d", sum, ok)
	}
	if got := s.TagNames(); len(got) > 0 && got[0] != "node-0" {
		t.Fatalf("tag names %v not in order", got)
	}
}

// TestOpenLoopOverload: arrivals beyond the in-flight bound fail at once
// with "overloaded", and every arrival is counted exactly once.
func TestOpenLoopOverload(t *testing.T) {
	release := make(chan struct{})
	var started atomic.Int64
	do := func(ctx context.Context, i int) Result {
		started.Add(1)
		select {
		case <-release:
		case <-ctx.Done():
		}
		return Result{}
	}
	g, err := Start(t.Context(), Config{Rate: 1e5, Concurrency: 3, Requests: 20, Interval: time.Minute}, do)
	if err != nil {
		t.Fatal(err)
	}
	// 17 arrivals fail while 3 hang; then the 3 are released.
	testutil.WaitFor(t, "3 requests in flight and 17 refused", func() bool {
		return started.Load() == 3 && g.Series.failedSoFar() == 17
	})
	close(release)
	<-g.Done()
	g.Series.mu.Lock()
	b := g.Series.buckets[0]
	g.Series.mu.Unlock()
	if b.ok != 3 || b.failed != 17 || !strings.Contains(g.Series.FirstErr(), "overloaded") {
		t.Fatalf("ok %d failed %d (%q), want 3 and 17 overloaded", b.ok, b.failed, g.Series.FirstErr())
	}
	if started.Load() != 3 {
		t.Fatalf("%d requests sent, want 3", started.Load())
	}
}

func (s *Series) failedSoFar() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, b := range s.buckets {
		n += b.failed
	}
	return n
}

// TestStopCutsToWholeIntervals: Stop keeps only whole intervals and drops
// results that arrive after it.
func TestStopCutsToWholeIntervals(t *testing.T) {
	s := newSeries(time.Second)
	s.start = time.Now().Add(-3500 * time.Millisecond) // 3.5 intervals in
	s.add(Result{})
	s.finish(s.Since(), true)
	if got := len(s.Samples()); got != 3 {
		t.Fatalf("%d samples after 3.5 intervals, want 3", got)
	}
	if s.End() != 3*time.Second {
		t.Fatalf("end %s, want 3s", s.End())
	}
	s.add(Result{})
	if ok, _, _ := s.Totals(); ok != 0 {
		t.Fatalf("%d results counted in the cut interval or after the end", ok)
	}
}

// TestRateWindows: Rate, Failed and MaxLag use the whole intervals inside
// a window; samples carry per-interval percentiles.
func TestRateWindows(t *testing.T) {
	s := newSeries(100 * time.Millisecond)
	for i, n := range []int{10, 20, 5, 30} {
		b := s.bucket(time.Duration(i) * s.interval)
		b.ok = n
		b.failed = i
		b.lag = time.Duration(i) * time.Millisecond
		for k := 1; k <= n; k++ {
			b.lat = append(b.lat, time.Duration(k)*time.Millisecond)
		}
	}
	s.finish(400*time.Millisecond, true)
	mean, low := s.Rate(50*time.Millisecond, 300*time.Millisecond) // intervals 1 and 2
	if mean != 125 || low != 50 {
		t.Fatalf("rate %.1f low %.1f, want 125 and 50", mean, low)
	}
	if f := s.Failed(0, time.Second); f != 6 {
		t.Fatalf("failed %d, want 6", f)
	}
	if l := s.MaxLag(0, 250*time.Millisecond); l != time.Millisecond {
		t.Fatalf("lag %s, want 1ms (interval 2 is cut by the window)", l)
	}
	if m, l := s.Rate(time.Second, 2*time.Second); m != 0 || l != 0 {
		t.Fatalf("empty window: %v %v", m, l)
	}
	x := s.Samples()[1]
	if x.P50 != 10*time.Millisecond || x.P99 != 20*time.Millisecond || x.PerSecond != 200 {
		t.Fatalf("sample 1: %+v", x)
	}
}

// TestOutputs: CSV has a header and a row per sample; JSON round-trips.
func TestOutputs(t *testing.T) {
	s := newSeries(time.Second)
	s.bucket(0).ok = 2
	s.bucket(0).tags = map[string]int{"node-1": 2}
	s.bucket(time.Second).failed = 1
	s.Mark("kill")
	s.finish(2*time.Second, true)
	var b bytes.Buffer
	if err := s.WriteCSV(&b); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 3 || !strings.HasSuffix(lines[0], ",node-1") || !strings.HasPrefix(lines[2], "2.000,0,1,") {
		t.Fatalf("csv:\n%s", b.String())
	}
	js, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	var back Series
	if err := json.Unmarshal(js, &back); err != nil {
		t.Fatal(err)
	}
	got := back.Samples()
	if len(got) != 2 || got[0].Tags["node-1"] != 2 || got[1].Errors != 1 || len(back.Events()) != 1 ||
		back.Events()[0].What != "kill" || back.End() != 2*time.Second || back.Interval() != time.Second {
		t.Fatalf("json: %s read back as %+v", js, got)
	}
}

func TestPercentile(t *testing.T) {
	ds := []time.Duration{5, 1, 4, 2, 3}
	if Percentile(ds, 50) != 3 || Percentile(ds, 99) != 5 || Percentile(ds, 0) != 1 || Percentile(nil, 50) != 0 {
		t.Fatal("percentile")
	}
}

func TestConfigCheck(t *testing.T) {
	for _, c := range []Config{{}, {Concurrency: -1}, {Rate: -1, Concurrency: 1}, {Concurrency: 1, Interval: time.Microsecond}} {
		if _, err := Start(t.Context(), c, nil); err == nil {
			t.Errorf("%+v: no error", c)
		}
	}
}

// TestGet: the HTTP Func judges status and body.
func TestGet(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/bad" {
			w.WriteHeader(500)
		}
		w.Write([]byte("hi"))
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	c := NewClient(2)
	base := "http://" + ln.Addr().String()
	if r := Get(c, base+"/", "hi")(t.Context(), 0); r.Err != "" {
		t.Fatalf("good answer judged bad: %s", r.Err)
	}
	if r := Get(c, base+"/", "ho")(t.Context(), 0); !strings.Contains(r.Err, `"hi"`) {
		t.Fatalf("wrong body: %q", r.Err)
	}
	if r := Get(c, base+"/bad", "hi")(t.Context(), 0); !strings.Contains(r.Err, "500") {
		t.Fatalf("wrong status: %q", r.Err)
	}
}

func TestProgressLine(t *testing.T) {
	s := newSeries(time.Second)
	s.start = time.Now().Add(-1500 * time.Millisecond)
	b := s.bucket(0)
	b.ok, b.failed = 4, 1
	b.lat = []time.Duration{time.Millisecond, 2 * time.Millisecond, 3 * time.Millisecond, 9 * time.Millisecond}
	line := s.progressLine("kill")
	if !strings.Contains(line, "kill") || !strings.Contains(line, "4 req/s") || !strings.Contains(line, "p99 9ms") || !strings.Contains(line, "errors 1") {
		t.Fatalf("progress line %q", line)
	}
	if IsTerminal(&bytes.Buffer{}) {
		t.Fatal("a buffer is a terminal")
	}
}
