// Package evalharness runs the paper's evaluation (PAPER.md, "The paper's
// evaluation"): a formula renderer (formula-cache in front of formula-logic)
// behind a gateway, loaded by internal/loadgen, with every reply checked
// byte for byte against the renderer run on this side. It measures scale-out
// (time to render N formulas on 1..N nodes), a node joining and a node
// crashing during a run. `tsubame bench paper-*` parses flags and prints
// what it returns; docs/evaluation.md says what is modelled and why.
//
// It never decides a figure is good: it measures and reports, and the
// caller (or the reader) compares.
package evalharness

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tsubame-rt/tsubame"
	"github.com/tsubame-rt/tsubame/components-src/go/formula-logic/render"
	"github.com/tsubame-rt/tsubame/gateway"
	"github.com/tsubame-rt/tsubame/internal/democluster"
	"github.com/tsubame-rt/tsubame/internal/loadgen"
	"github.com/tsubame-rt/tsubame/node/kv"
)

// Route is the app's route: POST /render with the formula as the body
// answers its image.
var Route = gateway.Route{
	Method: "POST", Path: "/render", Component: "formula-cache", Kind: "render", Input: "body",
	ContentType: "image/x-portable-graymap",
}

// App is the paper's app: every node holds both components, and
// formula-cache is granted the shared bucket "formulas" (no journal: a cache's
// operations are idempotent), one store for every node of the cluster.
var App = democluster.App{
	Modules:   map[string][]byte{"formula-cache": tsubame.FormulaCache, "formula-logic": tsubame.FormulaLogic},
	Placement: func(int, int) []string { return []string{"formula-cache", "formula-logic"} },
	Routes:    []gateway.Route{Route},
	KV:        SharedCache,
}

// SharedCache grants formula-cache its shared bucket. An App with a zero
// kv.Config instead runs the cache per instance (the component's fallback
// when the bucket is not granted).
var SharedCache = kv.Config{Buckets: map[string]kv.BucketConfig{
	"formulas": {Grant: []string{"formula-cache"}, Journal: new(bool)},
}}

// appComponents are the app's components, cache first.
var appComponents = []string{"formula-cache", "formula-logic"}

// Formula is request i's formula for seed: distinct for distinct i (i is
// its first number), about 20 bytes, never dividing by zero.
func Formula(seed uint64, i int) string {
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

// requests sends formulas to a gateway and checks every reply against the
// renderer run on this side.
type requests struct {
	seed     uint64
	distinct int
	url      string
	client   *http.Client
	want     sync.Map // formula -> expected image, when formulas repeat
	// Node-to-node migrations seen in the answers' traces, and the answers
	// traced.
	hops, traced atomic.Int64
}

func newRequests(o Options, base string) *requests {
	return &requests{seed: o.Seed, distinct: o.Distinct, url: base + Route.Path, client: loadgen.NewClient(o.Concurrency)}
}

// formula is the formula of request i: formula i, or one of the distinct
// set chosen by i.
func (q *requests) formula(i int) string {
	if q.distinct == 0 || i >= warmBase {
		return Formula(q.seed, i)
	}
	pick := rand.New(rand.NewPCG(q.seed^0x9e3779b97f4a7c15, uint64(i))).IntN(q.distinct)
	return Formula(q.seed, pick)
}

// do sends request i; the result's tag is the node that rendered ("" for a
// cache hit).
func (q *requests) do(ctx context.Context, i int) loadgen.Result {
	f := q.formula(i)
	start := time.Now()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, q.url, strings.NewReader(f))
	if err != nil {
		return loadgen.Result{Err: err.Error()}
	}
	res, err := q.client.Do(req)
	if err != nil {
		return loadgen.Result{Err: err.Error()}
	}
	body, err := io.ReadAll(res.Body)
	res.Body.Close()
	r := loadgen.Result{Latency: time.Since(start)}
	attempt, _ := strconv.Atoi(res.Header.Get("Tsubame-Attempt"))
	r.Resent = attempt > 0
	// cache, logic, cache: the middle step rendered. A hit is one step.
	// A baseline server sends no trace.
	trace := strings.Fields(res.Header.Get("Tsubame-Trace"))
	if len(trace) == 3 {
		r.Tag = trace[1]
	}
	if len(trace) > 0 {
		q.traced.Add(1)
		for i := 1; i < len(trace); i++ {
			if trace[i] != trace[i-1] {
				q.hops.Add(1)
			}
		}
	}
	if err != nil {
		r.Err = err.Error()
		return r
	}
	if res.StatusCode != http.StatusOK {
		r.Err = fmt.Sprintf("%d %q", res.StatusCode, bytes.TrimSpace(body[:min(len(body), 200)]))
		return r
	}
	want, err := q.expect(f)
	if err != nil {
		r.Err = fmt.Sprintf("the host renderer fails on %q: %v", f, err)
	} else if !bytes.Equal(body, want) {
		r.Err = fmt.Sprintf("wrong image for %q (%d bytes, want %d)", f, len(body), len(want))
	}
	return r
}

// expect is f's image as the renderer makes it on this side. A formula the
// renderer fails on is an error, never an empty image an empty reply could
// equal.
func (q *requests) expect(f string) ([]byte, error) {
	if img, ok := q.want.Load(f); ok {
		return img.([]byte), nil
	}
	img, err := render.Render(f)
	if err != nil {
		return nil, err
	}
	if q.distinct > 0 {
		q.want.Store(f, img)
	}
	return img, nil
}

// warm sends two requests per client with warm-up formulas, so every node
// has instantiated its modules before anything is measured.
func (q *requests) warm(ctx context.Context, concurrency int) error {
	s, err := loadgen.Run(ctx, loadgen.Config{Concurrency: concurrency, Requests: 2 * concurrency, First: warmBase, Interval: time.Minute}, 0, q.do)
	if err != nil {
		return err
	}
	if _, failed, _ := s.Totals(); failed > 0 {
		return fmt.Errorf("warm-up: %d requests failed (first: %s)", failed, s.FirstErr())
	}
	return nil
}
