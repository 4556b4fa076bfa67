package evalharness

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/tsubame-rt/tsubame/components-src/go/formula-logic/render"
	"github.com/tsubame-rt/tsubame/internal/testutil"
)

// small is the scenarios' setup scaled down for a test: the properties
// checked hold at any size; no timing is asserted.
func small(t *testing.T) Options {
	o := Options{Workers: 2, Hold: 5 * time.Millisecond, Concurrency: 8, Seed: 7, Attempt: time.Second}
	if testing.Verbose() {
		o.Log = os.Stderr
	}
	if err := o.Check(); err != nil {
		t.Fatal(err)
	}
	return o
}

// TestFormulas: formulas are distinct by number, render without error,
// and a distinct set draws only from its members.
func TestFormulas(t *testing.T) {
	seen := map[string]bool{}
	for i := range 500 {
		f := Formula(3, i)
		if seen[f] {
			t.Fatalf("formula %d repeats %q", i, f)
		}
		seen[f] = true
		if _, err := render.Render(f); err != nil {
			t.Fatalf("formula %d %q: %v", i, f, err)
		}
	}
	q := &requests{seed: 3, distinct: 5}
	set := map[string]bool{}
	for i := range 200 {
		set[q.formula(i)] = true
	}
	if len(set) != 5 {
		t.Fatalf("%d formulas drawn from a set of 5", len(set))
	}
}

// TestExpectRefusesRendererErrors: a formula the host renderer fails on is
// an error, so an empty reply can never compare equal to it.
func TestExpectRefusesRendererErrors(t *testing.T) {
	q := &requests{}
	if img, err := q.expect("1/0"); err == nil {
		t.Fatalf("1/0 expected %d bytes, want an error", len(img))
	}
	if img, err := q.expect("1+1"); err != nil || len(img) == 0 {
		t.Fatalf("1+1: %d bytes, %v", len(img), err)
	}
}

func TestModel(t *testing.T) {
	m := NewModel(10 * time.Millisecond)
	if d := m.Hold("formula-cache", time.Millisecond); d != 0 {
		t.Fatalf("cache step held %s", d)
	}
	if d := m.Hold("formula-logic", 4*time.Millisecond); d != 6*time.Millisecond {
		t.Fatalf("render of 4ms held %s more, want 6ms", d)
	}
	if d := m.Hold("formula-logic", 12*time.Millisecond); d != 0 {
		t.Fatalf("render of 12ms held %s more", d)
	}
	if m.Renders() != 2 || m.Short() != 1 || m.MeanRender() != 8*time.Millisecond {
		t.Fatalf("renders %d short %d mean %s", m.Renders(), m.Short(), m.MeanRender())
	}
}

func TestOptionsCheck(t *testing.T) {
	o := small(t)
	for _, bad := range []func(*Options){
		func(o *Options) { o.Workers = 0 },
		func(o *Options) { o.Hold = time.Second },
		func(o *Options) { o.Concurrency = 0 },
		func(o *Options) { o.Attempt = time.Millisecond },
		func(o *Options) { o.Interval = time.Millisecond },
	} {
		b := o
		bad(&b)
		if b.Check() == nil {
			t.Errorf("%+v: no error", b)
		}
	}
	// A process node cannot be modelled.
	if err := (Timeline{Nodes: 2, Before: time.Second, After: 2 * time.Second}).check(o, 1); err == nil ||
		!strings.Contains(err.Error(), "real CPU") {
		t.Errorf("a modelled process node: %v", err)
	}
}

// TestScaleout: every request is answered with the image the renderer
// makes on this side; with two nodes both render; every distinct formula
// misses, a small set of repeated ones hits the cache.
func TestScaleout(t *testing.T) {
	o := small(t)
	const requests = 60
	rows, err := Scaleout(t.Context(), o, []int{1, 2}, requests, t.Output())
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		if r.OK != requests || r.Failed != 0 {
			t.Errorf("%d node(s): %d of %d answered correctly, %d failed (first: %s)", r.Nodes, r.OK, requests, r.Failed, r.FirstErr)
		}
		if r.Hits != 0 {
			t.Errorf("%d node(s): %d cache hits with every formula distinct", r.Nodes, r.Hits)
		}
		if len(r.RendersOn) != r.Nodes {
			t.Errorf("%d node(s): renders on %v, want every node", r.Nodes, r.RendersOn)
		}
		if r.Model.Renders() < requests {
			t.Errorf("%d node(s): the capacity model saw %d renders, want at least %d", r.Nodes, r.Model.Renders(), requests)
		}
	}
	o.Distinct = 3
	rows, err = Scaleout(t.Context(), o, []int{1}, requests, t.Output())
	if err != nil {
		t.Fatal(err)
	}
	if r := rows[0]; r.OK != requests || r.Hits == 0 || r.Failed != 0 {
		t.Errorf("3 formulas repeated: %d of %d correct, %d hits, %d failed (first: %s)", r.OK, requests, r.Hits, r.Failed, r.FirstErr)
	}
}

// TestJoin: a node that joins during the run serves requests after it is
// ready, and no request fails.
func TestJoin(t *testing.T) {
	rep, err := Join(t.Context(), small(t), Timeline{Nodes: 1, Before: time.Second, After: 1500 * time.Millisecond, InProcess: true})
	if err != nil {
		t.Fatal(err)
	}
	ok, failed, _ := rep.Series.Totals()
	if failed != 0 || ok == 0 {
		t.Fatalf("%d answered, %d failed (first: %s)", ok, failed, rep.Series.FirstErr())
	}
	if rep.Added != "node-2" {
		t.Fatalf("added %q, want node-2", rep.Added)
	}
	if rep.Series.TagsAfter(rep.Added, rep.Ready) == 0 {
		t.Errorf("%s rendered nothing after it was ready (%.2fs)", rep.Added, rep.Ready.Seconds())
	}
}

// TestStopKill: a node process killed during the run drops out (the
// gateway stops listing it, it answers nothing afterwards), the others keep
// answering, and no request fails: those it held are resent.
func TestStopKill(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a node process")
	}
	o := small(t)
	o.Hold = 0 // a node process renders on real CPU
	o.Binary = testutil.Binary(t)
	checkStop(t, o, false)
}

// TestStopClose: the same with an in-process node stopped by Node.Close.
func TestStopClose(t *testing.T) {
	checkStop(t, small(t), true)
}

func checkStop(t *testing.T, o Options, inProcess bool) {
	rep, err := Stop(t.Context(), o, Timeline{Nodes: 2, Before: SettleAfterStop(o), After: SettleAfterStop(o) + time.Second, InProcess: inProcess})
	if err != nil {
		t.Fatal(err)
	}
	s := rep.Series
	ok, failed, _ := s.Totals()
	if failed != 0 {
		t.Fatalf("%d of %d requests failed (first: %s)", failed, ok+failed, s.FirstErr())
	}
	if served, _ := s.Rate(rep.Gone+s.Interval(), s.End()); served == 0 {
		t.Error("nothing was answered after the crash")
	}
	if _, seen := s.LastTag(rep.Stopped); !seen {
		t.Errorf("%s rendered nothing before it stopped", rep.Stopped)
	}
	if rep.LateOnStopped != 0 {
		t.Errorf("%s answered %d renders over a second after it stopped", rep.Stopped, rep.LateOnStopped)
	}
	if rep.Dropped < 0 {
		t.Errorf("the gateway still lists %s as a holder at the end", rep.Stopped)
	}
}
