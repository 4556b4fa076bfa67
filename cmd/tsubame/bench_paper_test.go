package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
	"testing"
	"time"
)

// paperNodeEnv makes this test binary run `tsubame bench paper-node`
// instead of the tests: the paper scenarios start their separate-process
// node with it.
const paperNodeEnv = "TSUBAME_TEST_PAPER_NODE"

func TestMain(m *testing.M) {
	if os.Getenv(paperNodeEnv) == "1" {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		code := benchPaperNode(ctx, nil, os.Stdout, os.Stderr)
		stop()
		os.Exit(code)
	}
	os.Exit(m.Run())
}

// smallPaper is the paper scenarios' setup scaled down for a test: the
// properties checked hold at any size; no timing is asserted.
func smallPaper(t *testing.T) paperOptions {
	o := paperOptions{workers: 2, hold: 5 * time.Millisecond, concurrency: 8, seed: 7, attempt: time.Second,
		exe: []string{os.Args[0]}, env: []string{paperNodeEnv + "=1"}}
	if testing.Verbose() {
		o.log = os.Stderr
	}
	if err := o.check(); err != nil {
		t.Fatal(err)
	}
	return o
}

// TestPaperScaleout: every request is answered with the image the renderer
// makes on this side; with two nodes both render; every distinct formula
// misses, a small set of repeated ones hits the cache.
func TestPaperScaleout(t *testing.T) {
	o := smallPaper(t)
	const requests = 60
	rows, err := paperScaleout(t.Context(), o, []int{1, 2}, requests, t.Output())
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		if r.ok != requests || r.failed != 0 {
			t.Errorf("%d node(s): %d of %d answered correctly, %d failed (first: %s)", r.nodes, r.ok, requests, r.failed, r.firstErr)
		}
		if r.hits != 0 {
			t.Errorf("%d node(s): %d cache hits with every formula distinct", r.nodes, r.hits)
		}
		if len(r.rendersOn) != r.nodes {
			t.Errorf("%d node(s): renders on %v, want every node", r.nodes, r.rendersOn)
		}
		if r.model.renders.Load() < requests {
			t.Errorf("%d node(s): the capacity model saw %d renders, want at least %d", r.nodes, r.model.renders.Load(), requests)
		}
	}

	o.distinct = 3
	rows, err = paperScaleout(t.Context(), o, []int{1}, requests, t.Output())
	if err != nil {
		t.Fatal(err)
	}
	if r := rows[0]; r.ok != requests || r.hits == 0 || r.failed != 0 {
		t.Errorf("3 formulas repeated: %d of %d correct, %d hits, %d failed (first: %s)", r.ok, requests, r.hits, r.failed, r.firstErr)
	}
}

// TestPaperJoin: a node that joins during the run serves requests after it
// is ready, and no request fails.
func TestPaperJoin(t *testing.T) {
	rep, err := paperJoin(t.Context(), smallPaper(t), 1, 250*time.Millisecond, time.Second, 1500*time.Millisecond, false)
	if err != nil {
		t.Fatal(err)
	}
	ok, failed, _ := rep.s.totals()
	if failed != 0 || ok == 0 {
		t.Fatalf("%d answered, %d failed (first: %s)", ok, failed, rep.s.firstErr)
	}
	if rep.added != "node-2" || rep.firstOnNew < 0 {
		t.Fatalf("the joining node %q rendered nothing", rep.added)
	}
	after := 0
	for i := int(rep.ready/rep.s.interval) + 1; i < len(rep.s.buckets); i++ {
		after += rep.s.buckets[i].rendersOn[rep.added]
	}
	if after == 0 {
		t.Errorf("%s rendered nothing after it was ready (%.2fs)", rep.added, rep.ready.Seconds())
	}
}

// TestPaperStop: a node killed during the run drops out (the gateway stops
// listing it, it answers nothing afterwards), the others keep answering,
// and no request fails: those it held are resent.
func TestPaperStop(t *testing.T) {
	o := smallPaper(t)
	before, after := time.Second, settleAfterStop(o)+time.Second
	rep, err := paperStop(t.Context(), o, 2, 250*time.Millisecond, before, after, false)
	if err != nil {
		t.Fatal(err)
	}
	s := rep.s
	ok, failed, _ := s.totals()
	if failed != 0 {
		t.Fatalf("%d of %d requests failed (first: %s)", failed, ok+failed, s.firstErr)
	}
	served := 0
	for i := int(rep.closed/s.interval) + 1; i < len(s.buckets); i++ {
		served += s.buckets[i].ok
	}
	if served == 0 {
		t.Error("nothing was answered after the crash")
	}
	if _, seen := s.lastOn[rep.stopped]; !seen {
		t.Errorf("%s rendered nothing before it was killed", rep.stopped)
	}
	if rep.lateOnStopped != 0 {
		t.Errorf("%s answered %d renders over a second after it was killed", rep.stopped, rep.lateOnStopped)
	}
	if rep.dropped < 0 {
		t.Errorf("the gateway still lists %s as a holder at the end", rep.stopped)
	}
}
