package main

// The paper's evaluation as `tsubame bench` scenarios: a formula renderer
// (formula-cache in front of formula-logic) behind a gateway, on a cluster
// in this process (plus, for a join or a crash, one node in a process of
// its own), under a closed-loop load generator. docs/evaluation.md
// explains what is modeled and why, and records the figures.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/tsubame-rt/tsubame"
	"github.com/tsubame-rt/tsubame/components-src/go/formula-logic/render"
	"github.com/tsubame-rt/tsubame/gateway"
	"github.com/tsubame-rt/tsubame/gateway/demo"
	"github.com/tsubame-rt/tsubame/internal/mesh/pki"
	"github.com/tsubame-rt/tsubame/node"
)

func init() {
	registerBench(benchScenario{"paper-scaleout", "the paper's scale-out: time to render N formulas on 1, 2, 3, 4 nodes", benchPaperScaleout})
	registerBench(benchScenario{"paper-join", "the paper's node addition: requests/s over time as a node joins mid-run", benchPaperJoin})
	registerBench(benchScenario{"paper-stop", "the paper's node stop: requests/s over time as a node crashes mid-run", benchPaperStop})
	registerBench(benchScenario{"paper-node", "one node of paper-join or paper-stop in its own process (they start it; setup on stdin)", benchPaperNode})
}

// paperOptions are what every paper scenario shares.
type paperOptions struct {
	workers     int
	hold        time.Duration
	concurrency int
	distinct    int // 0: every request a new formula; K: drawn from K formulas
	seed        uint64
	attempt     time.Duration
	verbose     bool
	log         io.Writer // cluster warnings; nil: discarded
	// exe and env run `tsubame bench paper-node` (a node in its own
	// process); default: this executable.
	exe []string
	env []string
}

func (o *paperOptions) flags(fs *flag.FlagSet, attempt time.Duration) {
	fs.IntVar(&o.workers, "workers", 4, "workers per node (1 to 64): a node's capacity is workers / hold")
	fs.DurationVar(&o.hold, "hold", 20*time.Millisecond, "how long a render holds its worker (the modeled capacity; 0 to 500ms)")
	fs.IntVar(&o.concurrency, "concurrency", 64, "concurrent clients (1 to 1024)")
	fs.IntVar(&o.distinct, "distinct", 0, "draw formulas at random from this many (0: every request a new formula, all cache misses)")
	fs.Uint64Var(&o.seed, "seed", 1, "seed of the formulas")
	fs.DurationVar(&o.attempt, "attempt-timeout", attempt, "the gateway's resend timeout")
	fs.BoolVar(&o.verbose, "verbose", false, "print the cluster's warnings to stderr")
}

func (o paperOptions) check() error {
	switch {
	case o.workers < 1 || o.workers > 64:
		return fmt.Errorf("--workers %d: want 1 to 64", o.workers)
	case o.hold < 0 || o.hold > 500*time.Millisecond:
		return fmt.Errorf("--hold %s: want 0 to 500ms (a step may take at most 1s)", o.hold)
	case o.concurrency < 1 || o.concurrency > 1024:
		return fmt.Errorf("--concurrency %d: want 1 to 1024", o.concurrency)
	case o.distinct < 0 || o.distinct > 1<<20:
		return fmt.Errorf("--distinct %d: want 0 to %d", o.distinct, 1<<20)
	case o.attempt < 100*time.Millisecond || o.attempt > time.Minute:
		return fmt.Errorf("--attempt-timeout %s: want 100ms to 1m", o.attempt)
	}
	return nil
}

// describe is the first line of every report: the model's parameters.
func (o paperOptions) describe() string {
	set := "every request a new formula (all cache misses)"
	if o.distinct > 0 {
		set = fmt.Sprintf("formulas drawn at random from %d", o.distinct)
	}
	model := "renders take what the CPU gives them (no modeled capacity)"
	if o.hold > 0 {
		model = fmt.Sprintf("a render holds its worker %s (capacity %.0f renders/s a node)", o.hold, o.capacity())
	}
	return fmt.Sprintf("%s; %d concurrent clients; each node: %d workers, %s; resend after %s; GOMAXPROCS %d",
		set, o.concurrency, o.workers, model, o.attempt, runtime.GOMAXPROCS(0))
}

// capacity is one node's modeled renders per second.
func (o paperOptions) capacity() float64 {
	if o.hold <= 0 {
		return 0
	}
	return float64(o.workers) / o.hold.Seconds()
}

// parsePaperFlags parses args into o and fs's own flags; it prints the
// problem and returns false when they are bad.
func parsePaperFlags(fs *flag.FlagSet, o *paperOptions, args []string, stderr io.Writer) bool {
	fs.SetOutput(stderr)
	if err := fs.Parse(args); err != nil {
		return false
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "%s: unexpected argument %q\n", fs.Name(), fs.Arg(0))
		return false
	}
	if err := o.check(); err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", fs.Name(), err)
		return false
	}
	if o.verbose {
		o.log = stderr
	}
	return true
}

// The app's route: POST /render with the formula as the body answers its
// image.
var paperRoute = gateway.Route{
	Method: "POST", Path: "/render", Component: "formula-cache", Kind: "render", Input: "body",
	ContentType: "image/x-portable-graymap",
}

var paperApp = demo.App{
	Modules:   map[string][]byte{"formula-cache": tsubame.FormulaCache, "formula-logic": tsubame.FormulaLogic},
	Placement: func(int, int) []string { return []string{"formula-cache", "formula-logic"} },
	Routes:    []gateway.Route{paperRoute},
}

// capacityModel makes a node's capacity workers/hold on a machine whose
// cores every node shares: it holds the worker of every formula-logic step
// until the step has taken hold, without using a core while it waits. It
// is the nodes' logger: formula-logic logs "rendered N bytes in T ns" at
// debug level from inside its step, and the host calls the logger
// synchronously on the step's goroutine, so waiting here is the step
// waiting (as on an I/O call). Other records go to out, at Warn and above.
type capacityModel struct {
	hold    time.Duration
	out     slog.Handler
	short   atomic.Int64 // renders that took hold or longer by themselves
	renders atomic.Int64 // every render seen ...
	took    atomic.Int64 // ... and the nanoseconds they took in the guest
}

// meanRender is the mean time a render took in the guest, before padding.
func (m *capacityModel) meanRender() time.Duration {
	if n := m.renders.Load(); n > 0 {
		return time.Duration(m.took.Load() / n)
	}
	return 0
}

type modelHandler struct {
	m   *capacityModel
	out slog.Handler
}

func (h modelHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return l == slog.LevelDebug || h.out.Enabled(ctx, l)
}

func (h modelHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level != slog.LevelDebug {
		return h.out.Handle(ctx, r)
	}
	took, ok := renderTime(r.Message)
	if !ok {
		return nil
	}
	h.m.renders.Add(1)
	h.m.took.Add(int64(took))
	rest := h.m.hold - took
	if rest <= 0 {
		h.m.short.Add(1)
		return nil
	}
	t := time.NewTimer(rest)
	defer t.Stop()
	select { // ctx is the step's: a node that stops cancels the wait
	case <-t.C:
	case <-ctx.Done():
	}
	return nil
}

func (h modelHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return modelHandler{h.m, h.out.WithAttrs(as)}
}

func (h modelHandler) WithGroup(name string) slog.Handler {
	return modelHandler{h.m, h.out.WithGroup(name)}
}

// renderTime reads formula-logic's "rendered N bytes in T ns".
func renderTime(msg string) (time.Duration, bool) {
	rest, ok := strings.CutPrefix(msg, "rendered ")
	if !ok {
		return 0, false
	}
	_, ns, ok := strings.Cut(rest, " bytes in ")
	if ns, ok = strings.CutSuffix(ns, " ns"); !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(ns, 10, 64)
	return time.Duration(n), err == nil && n >= 0
}

// startPaper starts an in-process cluster of n nodes serving the app.
func startPaper(ctx context.Context, o paperOptions, n int) (*demo.Cluster, *capacityModel, error) {
	out := slog.Handler(slog.DiscardHandler)
	if o.log != nil {
		out = slog.NewTextHandler(o.log, &slog.HandlerOptions{Level: slog.LevelWarn})
	}
	m := &capacityModel{hold: o.hold, out: out}
	d, err := demo.Start(ctx, demo.Config{
		Nodes: n, HTTP: "127.0.0.1:0", Workers: o.workers, App: &paperApp,
		AttemptTimeout: o.attempt, Logger: slog.New(modelHandler{m, out}),
	})
	return d, m, err
}

func stopPaper(d *demo.Cluster) {
	ctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	_ = d.Shutdown(ctx)
}

// paperFormula is request i's formula for seed: distinct for distinct i
// (i is its first number), about 20 bytes, never dividing by zero.
func paperFormula(seed uint64, i int) string {
	r := rand.New(rand.NewPCG(seed, uint64(i)))
	a, b, c, d := r.IntN(99)+1, r.IntN(99)+1, r.IntN(99)+1, r.IntN(99)+1
	switch r.IntN(4) {
	case 0:
		return fmt.Sprintf("%d+(%d+%d)*%d-%d", i, a, b, c, d)
	case 1:
		return fmt.Sprintf("%d-%d*%d/%d+%d", i, a, b, c, d)
	case 2:
		return fmt.Sprintf("(%d-%d)/(%d+%d)*%d", i, a, b, c, d)
	default:
		return fmt.Sprintf("%d/%d^2+%d*(%d-%d)", i, a, b, c, d)
	}
}

// warmBase numbers warm-up formulas apart from measured ones, so warm-up
// leaves nothing in the caches that a measured request could hit.
const warmBase = 1 << 24

// paperLoad sends formulas to a cluster's gateway and checks every reply
// against the renderer run on this side.
type paperLoad struct {
	o      paperOptions
	url    string
	client *http.Client
	want   sync.Map // formula -> expected image, when formulas repeat
}

func newPaperLoad(o paperOptions, d *demo.Cluster) *paperLoad {
	return &paperLoad{o: o, url: d.URL() + paperRoute.Path, client: demo.NewClient(o.concurrency)}
}

// formula is the formula of request i: formula i, or one of the distinct
// set chosen by i.
func (l *paperLoad) formula(i int) string {
	if l.o.distinct == 0 || i >= warmBase {
		return paperFormula(l.o.seed, i)
	}
	pick := rand.New(rand.NewPCG(l.o.seed^0x9e3779b97f4a7c15, uint64(i))).IntN(l.o.distinct)
	return paperFormula(l.o.seed, pick)
}

// result is one request's outcome.
type result struct {
	err     string // "" when answered correctly
	logic   string // the node that rendered; "" for a cache hit
	attempt int    // 0: answered by the first attempt
	latency time.Duration
}

func (l *paperLoad) do(ctx context.Context, i int) result {
	f := l.formula(i)
	start := time.Now()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, l.url, strings.NewReader(f))
	if err != nil {
		return result{err: err.Error()}
	}
	res, err := l.client.Do(req)
	if err != nil {
		return result{err: err.Error()}
	}
	body, err := io.ReadAll(res.Body)
	res.Body.Close()
	r := result{latency: time.Since(start)}
	r.attempt, _ = strconv.Atoi(res.Header.Get("Tsubame-Attempt"))
	// cache, logic, cache: the middle step rendered. A hit is one step.
	if trace := strings.Fields(res.Header.Get("Tsubame-Trace")); len(trace) == 3 {
		r.logic = trace[1]
	}
	switch {
	case err != nil:
		r.err = err.Error()
	case res.StatusCode != http.StatusOK:
		r.err = fmt.Sprintf("%d %q", res.StatusCode, bytes.TrimSpace(body[:min(len(body), 200)]))
	case !bytes.Equal(body, l.expect(f)):
		r.err = fmt.Sprintf("wrong image for %q (%d bytes)", f, len(body))
	}
	return r
}

func (l *paperLoad) expect(f string) []byte {
	if l.o.distinct == 0 {
		img, _ := render.Render(f)
		return img
	}
	if img, ok := l.want.Load(f); ok {
		return img.([]byte)
	}
	img, _ := render.Render(f)
	l.want.Store(f, img)
	return img
}

// closed runs the load's clients until ctx ends or next says stop (i < 0),
// handing each result to done. Requests cut off by ctx are not results.
func (l *paperLoad) closed(ctx context.Context, next func() int, done func(result)) {
	var wg sync.WaitGroup
	for range l.o.concurrency {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := next()
				if i < 0 {
					return
				}
				r := l.do(ctx, i)
				if ctx.Err() != nil {
					return
				}
				done(r)
			}
		})
	}
	wg.Wait()
}

// warm sends two requests per client with warm-up formulas, so every node
// has instantiated its modules before anything is measured.
func (l *paperLoad) warm(ctx context.Context) error {
	var n atomic.Int64
	var failed atomic.Int64
	var first atomic.Value
	l.closed(ctx, func() int {
		if i := int(n.Add(1)); i <= 2*l.o.concurrency {
			return warmBase + i
		}
		return -1
	}, func(r result) {
		if r.err != "" && failed.Add(1) == 1 {
			first.Store(r.err)
		}
	})
	if f := failed.Load(); f > 0 {
		return fmt.Errorf("warm-up: %d requests failed (first: %v)", f, first.Load())
	}
	return ctx.Err()
}

// scaleRow is one cluster size of the scale-out scenario.
type scaleRow struct {
	nodes     int
	elapsed   time.Duration
	ok        int
	failed    int
	firstErr  string
	hits      int
	resent    int
	p50, p99  time.Duration
	rendersOn map[string]int
	model     *capacityModel
}

// paperScaleout sends the same requests (numbered 0 to requests-1) to a
// fresh cluster of each size and reports how long each took.
func paperScaleout(ctx context.Context, o paperOptions, sizes []int, requests int, progress io.Writer) ([]scaleRow, error) {
	var rows []scaleRow
	for _, n := range sizes {
		fmt.Fprintf(progress, "starting %d node(s)...\n", n)
		d, m, err := startPaper(ctx, o, n)
		if err != nil {
			return rows, err
		}
		row, err := scaleOnce(ctx, o, d, requests)
		stopPaper(d)
		if err != nil {
			return rows, err
		}
		row.nodes, row.model = n, m
		rows = append(rows, row)
	}
	return rows, nil
}

func scaleOnce(ctx context.Context, o paperOptions, d *demo.Cluster, requests int) (scaleRow, error) {
	l := newPaperLoad(o, d)
	defer l.client.CloseIdleConnections()
	if err := l.warm(ctx); err != nil {
		return scaleRow{}, err
	}
	row := scaleRow{rendersOn: map[string]int{}}
	var mu sync.Mutex
	lat := make([]time.Duration, 0, requests)
	var next atomic.Int64
	start := time.Now()
	l.closed(ctx, func() int {
		if i := int(next.Add(1)) - 1; i < requests {
			return i
		}
		return -1
	}, func(r result) {
		mu.Lock()
		defer mu.Unlock()
		if r.err != "" {
			row.failed++
			if row.firstErr == "" {
				row.firstErr = r.err
			}
			return
		}
		row.ok++
		lat = append(lat, r.latency)
		if r.attempt > 0 {
			row.resent++
		}
		if r.logic == "" {
			row.hits++
		} else {
			row.rendersOn[r.logic]++
		}
	})
	row.elapsed = time.Since(start)
	row.p50, row.p99 = demo.Percentile(lat, 50), demo.Percentile(lat, 99)
	return row, ctx.Err()
}

func benchPaperScaleout(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("tsubame bench paper-scaleout", flag.ContinueOnError)
	var o paperOptions
	o.flags(fs, 2*time.Second)
	nodesFlag := fs.String("nodes", "1,2,3,4", "comma-separated cluster `sizes`, each a fresh cluster (1 to 16)")
	requests := fs.Int("requests", 2000, "requests per cluster size (1 to 100000)")
	if !parsePaperFlags(fs, &o, args, stderr) {
		return 2
	}
	sizes, err := parseSizes(*nodesFlag)
	if err != nil || *requests < 1 || *requests > 100000 {
		fmt.Fprintf(stderr, "tsubame bench paper-scaleout: --nodes %q --requests %d: want sizes 1 to 16 and 1 to 100000 requests\n", *nodesFlag, *requests)
		return 2
	}
	rows, err := paperScaleout(ctx, o, sizes, *requests, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "tsubame bench paper-scaleout:", err)
		return 1
	}
	fmt.Fprintf(stdout, "paper scale-out: %d requests per size, %s\n", *requests, o.describe())
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "nodes\ttime\treq/s\tspeedup vs 1st\tideal\tmodel time\tp50\tp99\tfailed\tresent\tcache hits\trender in guest\trenders per node\t")
	failed := 0
	for _, r := range rows {
		// The model's time: every render holds a worker for hold, nothing
		// else costs anything.
		model := "-"
		if o.hold > 0 {
			model = time.Duration(float64(r.ok-r.hits) / (float64(r.nodes) * o.capacity()) * float64(time.Second)).Round(time.Millisecond).String()
		}
		fmt.Fprintf(tw, "%d\t%s\t%.0f\t%.2f\t%.2f\t%s\t%s\t%s\t%d\t%d\t%d\t%s\t%s\t\n", r.nodes,
			r.elapsed.Round(time.Millisecond), float64(r.ok)/r.elapsed.Seconds(),
			rows[0].elapsed.Seconds()/r.elapsed.Seconds(), float64(r.nodes)/float64(rows[0].nodes),
			model, r.p50.Round(time.Millisecond), r.p99.Round(time.Millisecond),
			r.failed, r.resent, r.hits, r.model.meanRender().Round(time.Microsecond), perNode(r.rendersOn))
		failed += r.failed
		if r.firstErr != "" {
			fmt.Fprintf(stderr, "%d node(s): first failure: %s\n", r.nodes, r.firstErr)
		}
		if s := r.model.short.Load(); s > 0 && o.hold > 0 {
			fmt.Fprintf(stderr, "%d node(s): %d renders took longer than --hold by themselves (the CPU, not the model, bounded them)\n", r.nodes, s)
		}
	}
	tw.Flush()
	if failed > 0 {
		return 1
	}
	return 0
}

func parseSizes(s string) ([]int, error) {
	var sizes []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 || n > 16 {
			return nil, fmt.Errorf("bad size %q", f)
		}
		sizes = append(sizes, n)
	}
	return sizes, nil
}

// perNode formats counts by node name, in name order.
func perNode(m map[string]int) string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	slices.SortFunc(names, func(a, b string) int { return nodeNumber(a) - nodeNumber(b) })
	var b strings.Builder
	for i, n := range names {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%s:%d", n, m[n])
	}
	return b.String()
}

// nodeNumber is N of "node-N" (for ordering).
func nodeNumber(name string) int {
	n, _ := strconv.Atoi(strings.TrimPrefix(name, "node-"))
	return n
}

// bucket is one sampling interval of a time series.
type bucket struct {
	ok, failed, resent int
	rendersOn          map[string]int
	// lag is how late a 5 ms ticker of this process fired at worst: a
	// process-wide stall (a busy or paused machine) shows here, one of the
	// cluster's doing does not.
	lag time.Duration
}

// series is requests/s sampled at fixed intervals, with what happened when.
type series struct {
	interval time.Duration
	start    time.Time
	mu       sync.Mutex
	buckets  []bucket
	events   []event
	firstErr string
	lastOn   map[string]time.Duration // when each node last rendered
	end      time.Duration            // of the last whole interval
}

type event struct {
	at   time.Duration
	what string
}

func newSeries(interval time.Duration) *series {
	return &series{interval: interval, start: time.Now(), lastOn: map[string]time.Duration{}}
}

// bucket returns the bucket of the interval at falls in; s.mu is held.
func (s *series) bucket(at time.Duration) *bucket {
	i := int(at / s.interval)
	for len(s.buckets) <= i {
		s.buckets = append(s.buckets, bucket{rendersOn: map[string]int{}})
	}
	return &s.buckets[i]
}

// watchLag records timer lateness until done closes.
func (s *series) watchLag(done <-chan struct{}) {
	const tick = 5 * time.Millisecond
	t := time.NewTicker(tick)
	defer t.Stop()
	last := time.Now()
	for {
		select {
		case <-done:
			return
		case now := <-t.C:
			lag := now.Sub(last) - tick
			last = now
			s.mu.Lock()
			if b := s.bucket(now.Sub(s.start)); lag > b.lag {
				b.lag = lag
			}
			s.mu.Unlock()
		}
	}
}

func (s *series) add(r result) {
	at := time.Since(s.start)
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.bucket(at)
	if r.err != "" {
		b.failed++
		if s.firstErr == "" {
			s.firstErr = r.err
		}
		return
	}
	b.ok++
	if r.attempt > 0 {
		b.resent++
	}
	if r.logic != "" {
		b.rendersOn[r.logic]++
		s.lastOn[r.logic] = at
	}
}

func (s *series) mark(what string) time.Duration {
	at := time.Since(s.start)
	s.mu.Lock()
	s.events = append(s.events, event{at, what})
	s.mu.Unlock()
	return at
}

// rps returns the mean and the minimum requests/s of the whole intervals
// inside [from, to).
func (s *series) rps(from, to time.Duration) (mean, low float64) {
	first := int((from + s.interval - 1) / s.interval)
	last := int(to/s.interval) - 1 // the last interval ending by to
	n, sum := 0, 0
	low = -1
	for i := max(first, 0); i <= last && i < len(s.buckets); i++ {
		r := float64(s.buckets[i].ok) / s.interval.Seconds()
		if low < 0 || r < low {
			low = r
		}
		sum += s.buckets[i].ok
		n++
	}
	if n == 0 {
		return 0, 0
	}
	return float64(sum) / (float64(n) * s.interval.Seconds()), low
}

// maxLag is the worst timer lag in the whole intervals inside [from, to).
func (s *series) maxLag(from, to time.Duration) time.Duration {
	var lag time.Duration
	for i := max(int((from+s.interval-1)/s.interval), 0); i < int(to/s.interval) && i < len(s.buckets); i++ {
		lag = max(lag, s.buckets[i].lag)
	}
	return lag
}

func (s *series) totals() (ok, failed, resent int) {
	for _, b := range s.buckets {
		ok, failed, resent = ok+b.ok, failed+b.failed, resent+b.resent
	}
	return
}

// print writes the series as a table: one row per interval, with the
// renders each node did in it and the events that happened in it.
func (s *series) print(w io.Writer) {
	names := map[string]int{}
	for _, b := range s.buckets {
		for n := range b.rendersOn {
			names[n] = 0
		}
	}
	cols := strings.Fields(perNode(names))
	for i, c := range cols {
		cols[i], _, _ = strings.Cut(c, ":")
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "t (s)\treq/s\tfailed\tresent\t%s\tlag ms\t\tevent\n", strings.Join(cols, "\t"))
	for i, b := range s.buckets {
		from, to := time.Duration(i)*s.interval, time.Duration(i+1)*s.interval
		var what []string
		for _, e := range s.events {
			if e.at >= from && e.at < to {
				what = append(what, fmt.Sprintf("%s at %.2fs", e.what, e.at.Seconds()))
			}
		}
		fmt.Fprintf(tw, "%.2f\t%.0f\t%d\t%d\t", to.Seconds(), float64(b.ok)/s.interval.Seconds(), b.failed, b.resent)
		for _, c := range cols {
			fmt.Fprintf(tw, "%d\t", b.rendersOn[c])
		}
		fmt.Fprintf(tw, "%d\t\t%s\n", b.lag.Milliseconds(), strings.Join(what, "; "))
	}
	tw.Flush()
}

// timeline runs closed-loop load on d (after a warm-up), calls change at
// before and goes on for after once change has returned (a node's start-up
// takes what it takes), and returns the series; change marks its own
// events.
func timeline(ctx context.Context, o paperOptions, d *demo.Cluster, interval, before, after time.Duration,
	change func(s *series) error) (*series, error) {
	l := newPaperLoad(o, d)
	defer l.client.CloseIdleConnections()
	if err := l.warm(ctx); err != nil {
		return nil, err
	}
	lctx, stop := context.WithCancel(ctx)
	defer stop()
	s := newSeries(interval)
	var next atomic.Int64
	loaded, lagged := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(loaded)
		l.closed(lctx, func() int { return int(next.Add(1)) - 1 }, s.add)
	}()
	go func() {
		defer close(lagged)
		s.watchLag(loaded)
	}()
	var err error
	select {
	case <-time.After(before):
		err = change(s)
	case <-ctx.Done():
	}
	end := time.Since(s.start) + after
	if err == nil {
		select {
		case <-time.After(time.Until(s.start.Add(end))):
		case <-ctx.Done():
		}
	}
	stop()
	<-loaded
	<-lagged
	s.mu.Lock()
	// Exactly the run's intervals: the one the end cut short goes, and
	// trailing ones nothing finished in are there (at zero).
	n := int(end / interval)
	s.end = time.Duration(n) * interval
	for len(s.buckets) < n {
		s.buckets = append(s.buckets, bucket{rendersOn: map[string]int{}})
	}
	s.buckets = s.buckets[:n]
	s.mu.Unlock()
	if err != nil {
		return s, err
	}
	return s, ctx.Err()
}

// timelineArgs are the join and stop scenarios' own flags.
type timelineArgs struct {
	nodes                   int
	before, after, interval time.Duration
	mode                    string // --boot or --crash
	modeFlag                string
	modes                   []string
}

func (a *timelineArgs) flags(fs *flag.FlagSet, nodes int, mode, usage string, modes ...string) {
	fs.IntVar(&a.nodes, "nodes", nodes, "nodes at the start (1 to 16)")
	fs.DurationVar(&a.before, "before", 5*time.Second, "measured load before the change")
	fs.DurationVar(&a.after, "after", 6*time.Second, "measured load once the change is done (the node ready, or gone)")
	fs.DurationVar(&a.interval, "interval", 250*time.Millisecond, "sampling interval (50ms to 10s)")
	fs.StringVar(&a.mode, mode, modes[0], usage)
	a.modeFlag, a.modes = mode, modes
}

// parseTimeline parses and checks a join or stop scenario's flags; it
// prints the problem and returns false when they are bad.
func parseTimeline(fs *flag.FlagSet, o *paperOptions, a *timelineArgs, args []string, stderr io.Writer, minNodes int) bool {
	if !parsePaperFlags(fs, o, args, stderr) {
		return false
	}
	var err error
	switch {
	case a.nodes < minNodes || a.nodes > 16:
		err = fmt.Errorf("--nodes %d: want %d to 16", a.nodes, minNodes)
	case a.interval < 50*time.Millisecond || a.interval > 10*time.Second:
		err = fmt.Errorf("--interval %s: want 50ms to 10s", a.interval)
	case a.before < 2*a.interval || a.after < 4*a.interval || a.before+a.after > 10*time.Minute:
		err = fmt.Errorf("--before %s --after %s: want at least 2 and 4 intervals, at most 10m in all", a.before, a.after)
	case !slices.Contains(a.modes, a.mode):
		err = fmt.Errorf("--%s %q: want one of %s", a.modeFlag, a.mode, strings.Join(a.modes, ", "))
	}
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", fs.Name(), err)
		return false
	}
	fmt.Fprintf(stderr, "starting %d node(s)...\n", a.nodes)
	return true
}

// seriesExit reports a series' first failure and returns the exit code.
func seriesExit(s *series, stderr io.Writer) int {
	if s.firstErr == "" {
		return 0
	}
	fmt.Fprintln(stderr, "first failure:", s.firstErr)
	return 1
}

// joinReport is what the join scenario measured.
type joinReport struct {
	s                 *series
	nodes             int
	added             string
	begun, ready      time.Duration // AddNode called, returned
	firstOnNew        time.Duration // first render by the new node (-1: none)
	meanBefore, meanA float64
	// The lowest interval from the start of the node to a second after it
	// is ready, and in a window as long just before (the same run's
	// baseline: this machine is shared, and busy neighbours make dips too).
	lowAround, lowControl float64
	lagAround, lagControl time.Duration // the worst timer lag in the same windows
}

// paperJoin runs load on n nodes and adds one at before: in its own
// process (booting at low priority), or with inProcess in this one.
func paperJoin(ctx context.Context, o paperOptions, n int, interval, before, after time.Duration, inProcess bool) (joinReport, error) {
	d, _, err := startPaper(ctx, o, n)
	if err != nil {
		return joinReport{}, err
	}
	defer stopPaper(d)
	var proc *nodeProc
	defer func() {
		if proc != nil {
			proc.stop()
		}
	}()
	rep := joinReport{nodes: n, firstOnNew: -1}
	s, err := timeline(ctx, o, d, interval, before, after, func(s *series) error {
		rep.begun = s.mark("node starting")
		if inProcess {
			nd, err := d.AddNode(ctx)
			if err != nil {
				return err
			}
			rep.added = nd.Name()
		} else {
			rep.added = fmt.Sprintf("node-%d", n+1)
			if proc, err = startNodeProc(ctx, o, d, rep.added); err != nil {
				return err
			}
		}
		rep.ready = s.mark(rep.added + " ready")
		return nil
	})
	rep.s = s
	if err != nil {
		return rep, err
	}
	for i, b := range s.buckets {
		if b.rendersOn[rep.added] > 0 {
			rep.firstOnNew = time.Duration(i) * interval
			break
		}
	}
	settle := rep.ready + time.Second
	begun := rep.begun.Truncate(interval) // the interval it began in counts as after
	rep.meanBefore, _ = s.rps(0, begun)
	rep.meanA, _ = s.rps(settle, s.end)
	_, rep.lowAround = s.rps(begun, settle)
	_, rep.lowControl = s.rps(begun-(settle-begun), begun)
	rep.lagAround, rep.lagControl = s.maxLag(begun, settle), s.maxLag(begun-(settle-begun), begun)
	return rep, nil
}

func benchPaperJoin(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("tsubame bench paper-join", flag.ContinueOnError)
	var o paperOptions
	o.flags(fs, 2*time.Second)
	var a timelineArgs
	a.flags(fs, 2, "boot", "where the joining node runs: \"process\" (its own, compiling at low priority, as on its own machine) "+
		"or \"inprocess\" (this one, competing for the cores)", "process", "inprocess")
	if !parseTimeline(fs, &o, &a, args, stderr, 1) {
		return 2
	}
	rep, err := paperJoin(ctx, o, a.nodes, a.interval, a.before, a.after, a.mode == "inprocess")
	if err != nil {
		fmt.Fprintln(stderr, "tsubame bench paper-join:", err)
		return 1
	}
	s := rep.s
	fmt.Fprintf(stdout, "paper node addition: %d node(s), one more (--boot %s) joins at %s; %s\n", rep.nodes, a.mode, a.before, o.describe())
	s.print(stdout)
	ok, failed, resent := s.totals()
	fmt.Fprintf(stdout, "\n%s: start called at %.2fs, ready (every member sees it) at %.2fs, first render in the interval from %.2fs\n",
		rep.added, rep.begun.Seconds(), rep.ready.Seconds(), rep.firstOnNew.Seconds())
	fmt.Fprintf(stdout, "mean req/s before the join: %.0f; after (from ready + 1s): %.0f = %.2fx (ideal %.2fx)\n",
		rep.meanBefore, rep.meanA, rep.meanA/rep.meanBefore, float64(rep.nodes+1)/float64(rep.nodes))
	fmt.Fprintf(stdout, "lowest interval from the start to 1s after ready: %.0f req/s = %.2fx the mean before (worst timer lag %s); "+
		"in as long a window just before the start: %.0f = %.2fx (%s)\n",
		rep.lowAround, rep.lowAround/rep.meanBefore, rep.lagAround.Round(time.Millisecond),
		rep.lowControl, rep.lowControl/rep.meanBefore, rep.lagControl.Round(time.Millisecond))
	fmt.Fprintf(stdout, "requests: %d answered correctly, %d failed, %d answered by a resend\n", ok, failed, resent)
	return seriesExit(s, stderr)
}

// stopReport is what the stop scenario measured.
type stopReport struct {
	s                   *series
	nodes               int
	stopped             string
	at, closed, dropped time.Duration // crash begun, done; gateway stopped listing it (-1: never)
	meanBefore, meanA   float64
	lowAround           float64 // the lowest interval until the new steady state
	lowControl          float64 // ... and in as long a window before the crash
	lagAround           time.Duration
	lagControl          time.Duration // the worst timer lag in the same windows
	resends             int64         // the gateway's resend counter over the run
	lastOnStopped       time.Duration
	lateOnStopped       int // renders by the stopped node answered over 1s after it was gone
}

// settleAfterStop is how long after a crash the stop scenario waits before
// it measures the new steady state: the resend timeout plus failure
// detection's second.
func settleAfterStop(o paperOptions) time.Duration { return o.attempt + time.Second }

// paperStop runs load on n nodes and crashes the last at before: a node in
// its own process killed with SIGKILL, or with inProcess a node of this
// process stopped with Node.Close.
func paperStop(ctx context.Context, o paperOptions, n int, interval, before, after time.Duration, inProcess bool) (stopReport, error) {
	inside := n
	if !inProcess {
		inside--
	}
	d, _, err := startPaper(ctx, o, inside)
	if err != nil {
		return stopReport{}, err
	}
	defer stopPaper(d)
	var proc *nodeProc
	if !inProcess {
		if proc, err = startNodeProc(ctx, o, d, fmt.Sprintf("node-%d", n)); err != nil {
			return stopReport{}, err
		}
		defer proc.stop()
	}
	rep := stopReport{nodes: n, dropped: -1}
	resends0, err := gatewayCounter(d, "resends")
	if err != nil {
		return rep, err
	}
	watch := make(chan struct{})
	var watched sync.WaitGroup
	unwatch := sync.OnceFunc(func() { close(watch); watched.Wait() })
	defer unwatch()
	s, err := timeline(ctx, o, d, interval, before, after, func(s *series) error {
		if inProcess {
			victim := d.Nodes[len(d.Nodes)-1]
			d.Nodes = d.Nodes[:len(d.Nodes)-1]
			rep.stopped = victim.Name()
			rep.at = s.mark(rep.stopped + " closed")
			victim.Close() // as a crash, but see docs/evaluation.md
		} else {
			rep.stopped = proc.name
			rep.at = s.mark(rep.stopped + " killed")
			proc.kill()
		}
		rep.closed = s.mark("gone")
		watched.Go(func() { rep.dropped = waitDropped(d.Gateway, rep.stopped, s, watch) })
		return nil
	})
	unwatch()
	rep.s = s
	if err != nil {
		return rep, err
	}
	resends1, err := gatewayCounter(d, "resends")
	if err != nil {
		return rep, err
	}
	rep.resends = resends1 - resends0
	rep.lastOnStopped = s.lastOn[rep.stopped]
	for i := int((rep.closed+time.Second)/interval) + 1; i < len(s.buckets); i++ {
		rep.lateOnStopped += s.buckets[i].rendersOn[rep.stopped]
	}
	at := rep.at.Truncate(interval) // the interval of the crash counts as after
	settle := at + settleAfterStop(o)
	rep.meanBefore, _ = s.rps(0, at)
	rep.meanA, _ = s.rps(settle, s.end)
	_, rep.lowAround = s.rps(at, settle)
	_, rep.lowControl = s.rps(at-settleAfterStop(o), at)
	rep.lagAround, rep.lagControl = s.maxLag(at, settle), s.maxLag(at-settleAfterStop(o), at)
	return rep, nil
}

// waitDropped polls until the gateway no longer lists name as a holder and
// returns when (on s's clock), or -1 if done closes first.
func waitDropped(g *gateway.Gateway, name string, s *series, done <-chan struct{}) time.Duration {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		if !slices.Contains(g.Holders("formula-cache"), name) {
			return s.mark(name + " no longer a candidate at the gateway")
		}
		select {
		case <-done:
			return -1
		case <-t.C:
		}
	}
}

// gatewayCounter reads one counter of the gateway's GET /healthz.
func gatewayCounter(d *demo.Cluster, name string) (int64, error) {
	res, err := http.Get(d.URL() + "/healthz")
	if err != nil {
		return 0, fmt.Errorf("gateway health: %w", err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		return 0, fmt.Errorf("gateway health: %w", err)
	}
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			return strconv.ParseInt(v, 10, 64)
		}
	}
	return 0, errors.New("gateway health: no counter " + name)
}

func benchPaperStop(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("tsubame bench paper-stop", flag.ContinueOnError)
	var o paperOptions
	o.flags(fs, time.Second)
	var a timelineArgs
	a.flags(fs, 4, "crash", "how the node stops: \"kill\" (a node in its own process, SIGKILL) "+
		"or \"close\" (a node of this process, Node.Close)", "kill", "close")
	if !parseTimeline(fs, &o, &a, args, stderr, 2) {
		return 2
	}
	if a.after < settleAfterStop(o)+4*a.interval || a.before < settleAfterStop(o) {
		fmt.Fprintf(stderr, "tsubame bench paper-stop: --before %s --after %s: want both at least the resend timeout + 1s (and after 4 intervals more)\n", a.before, a.after)
		return 2
	}
	rep, err := paperStop(ctx, o, a.nodes, a.interval, a.before, a.after, a.mode == "close")
	if err != nil {
		fmt.Fprintln(stderr, "tsubame bench paper-stop:", err)
		return 1
	}
	s := rep.s
	fmt.Fprintf(stdout, "paper node stop: %d nodes, one crashes (--crash %s) at %s; %s\n", rep.nodes, a.mode, a.before, o.describe())
	s.print(stdout)
	ok, failed, resent := s.totals()
	settle := settleAfterStop(o)
	fmt.Fprintf(stdout, "\n%s: crashed at %.2fs (gone at %.2fs), no longer a candidate at the gateway at %.2fs, last render it returned at %.2fs\n",
		rep.stopped, rep.at.Seconds(), rep.closed.Seconds(), rep.dropped.Seconds(), rep.lastOnStopped.Seconds())
	fmt.Fprintf(stdout, "mean req/s before the crash: %.0f; after (from crash + %s): %.0f = %.2fx (one node's share gone: %.2fx)\n",
		rep.meanBefore, settle, rep.meanA, rep.meanA/rep.meanBefore, float64(rep.nodes-1)/float64(rep.nodes))
	fmt.Fprintf(stdout, "lowest interval in the %s after the crash: %.0f req/s = %.2fx the mean after (worst timer lag %s); "+
		"in the %s before it: %.0f = %.2fx the mean before (%s)\n",
		settle, rep.lowAround, rep.lowAround/rep.meanA, rep.lagAround.Round(time.Millisecond),
		settle, rep.lowControl, rep.lowControl/rep.meanBefore, rep.lagControl.Round(time.Millisecond))
	fmt.Fprintf(stdout, "requests: %d answered correctly, %d failed, %d answered by a resend (gateway resends: %d)\n",
		ok, failed, resent, rep.resends)
	return seriesExit(s, stderr)
}

// nodeSetup is what `tsubame bench paper-node` reads on stdin: one JSON
// line.
type nodeSetup struct {
	Name          string
	CA, Cert, Key []byte // PEM
	Seeds         []string
	Workers       int
	Hold          time.Duration
}

// benchPaperNode runs one node of the paper's app with the capacity model
// until its stdin closes (the scenario that started it is done, or died),
// then leaves. While it compiles its modules it runs at the lowest CPU
// priority: it stands for a server booting on its own machine, which costs
// the running servers nothing; on this one it would take their cores.
func benchPaperNode(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		fmt.Fprintln(stderr, "tsubame bench paper-node: no flags: the setup comes on stdin from paper-join or paper-stop")
		return 2
	}
	in := bufio.NewReader(os.Stdin)
	line, err := in.ReadBytes('\n')
	var st nodeSetup
	if err == nil {
		err = json.Unmarshal(line, &st)
	}
	if err != nil {
		fmt.Fprintln(stderr, "tsubame bench paper-node: reading the setup on stdin:", err)
		return 2
	}
	if err := niceAll(19); err != nil {
		fmt.Fprintln(stderr, "tsubame bench paper-node: start-up at normal priority:", err)
	}
	tlsConf, err := pki.TLSConfig(st.CA, st.Cert, st.Key)
	if err != nil {
		fmt.Fprintln(stderr, "tsubame bench paper-node:", err)
		return 1
	}
	out := slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn})
	m := &capacityModel{hold: st.Hold, out: out}
	nc := node.DefaultConfig()
	nc.Name, nc.Workers, nc.Seeds = st.Name, st.Workers, st.Seeds
	nc.Listen, nc.Gossip, nc.Admin = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	n, err := node.New(ctx, nc, node.Options{TLS: tlsConf, Modules: paperApp.Modules, Logger: slog.New(modelHandler{m, out})})
	if err != nil {
		fmt.Fprintln(stderr, "tsubame bench paper-node:", err)
		return 1
	}
	if err := niceAll(0); err != nil {
		fmt.Fprintln(stderr, "tsubame bench paper-node: stays at low priority:", err)
	}
	fmt.Fprintf(stdout, "ready %s\n", n.Name())
	done := make(chan struct{})
	go func() { _, _ = io.Copy(io.Discard, in); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if err := n.Shutdown(sctx); err != nil {
		fmt.Fprintln(stderr, "tsubame bench paper-node:", err)
	}
	return 0
}

// nodeProc is a paper-node process.
type nodeProc struct {
	name   string
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	exited chan struct{} // closed when the process has been waited for
}

// procReadyTimeout bounds a node process's start-up, compilation included.
const procReadyTimeout = time.Minute

// startNodeProc starts a node named name in its own process, joining d,
// and returns once the gateway and every node of d see it.
func startNodeProc(ctx context.Context, o paperOptions, d *demo.Cluster, name string) (_ *nodeProc, err error) {
	certPEM, keyPEM, err := d.Issue(name)
	if err != nil {
		return nil, err
	}
	st := nodeSetup{Name: name, CA: d.CAPEM(), Cert: certPEM, Key: keyPEM,
		Seeds: []string{d.Gateway.GossipAddr()}, Workers: o.workers, Hold: o.hold}
	for _, n := range d.Nodes {
		st.Seeds = append(st.Seeds, n.GossipAddr())
	}
	setup, err := json.Marshal(st)
	if err != nil {
		return nil, err
	}
	exe := o.exe
	if len(exe) == 0 {
		self, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("start %s: %w", name, err)
		}
		exe = []string{self, "bench", "paper-node"}
	}
	cmd := exec.Command(exe[0], exe[1:]...)
	cmd.Env = append(os.Environ(), o.env...)
	cmd.Stderr = o.log
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &nodeProc{name: name, cmd: cmd, stdin: stdin, exited: make(chan struct{})}
	ready := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		ready <- strings.TrimSpace(line)
		_, _ = io.Copy(io.Discard, stdout) // Wait needs the pipe drained
	}()
	go func() { _ = cmd.Wait(); close(p.exited) }()
	defer func() {
		if err != nil {
			p.kill()
		}
	}()
	if _, err := stdin.Write(append(setup, '\n')); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	timer := time.NewTimer(procReadyTimeout)
	defer timer.Stop()
	select {
	case line := <-ready:
		if line != "ready "+name {
			return nil, fmt.Errorf("start %s: it said %q (--verbose shows why)", name, line)
		}
	case <-timer.C:
		return nil, fmt.Errorf("start %s: not ready after %s", name, procReadyTimeout)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return p, waitSeen(ctx, d, name)
}

// waitSeen polls until the gateway lists name as a holder of both
// components and every node of d sees it with a fresh report.
func waitSeen(ctx context.Context, d *demo.Cluster, name string) error {
	deadline := time.Now().Add(procReadyTimeout)
	for {
		missing := ""
		for comp := range paperApp.Modules {
			if !slices.Contains(d.Gateway.Holders(comp), name) {
				missing = "the gateway does not see " + name + " hold " + comp
			}
		}
		for _, n := range d.Nodes {
			if !slices.ContainsFunc(n.Status().Members, func(m node.MemberStatus) bool {
				return m.Name == name && m.Fresh && len(m.Components) > 0
			}) {
				missing = n.Name() + " does not see " + name
			}
		}
		if missing == "" {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: not seen after %s: %s", name, procReadyTimeout, missing)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// kill ends the process at once (SIGKILL on Unix): a crash.
func (p *nodeProc) kill() {
	_ = p.cmd.Process.Kill()
	<-p.exited
}

// stop lets the process leave the cluster (it shuts down when its stdin
// closes) and kills it if it takes too long.
func (p *nodeProc) stop() {
	p.stdin.Close()
	select {
	case <-p.exited:
	case <-time.After(shutdownGrace + time.Second):
		p.kill()
	}
}
