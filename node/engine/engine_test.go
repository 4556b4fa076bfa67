package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tsubame-rt/tsubame/abi"
	"github.com/tsubame-rt/tsubame/lp"
	"github.com/tsubame-rt/tsubame/wasmhost"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func newRuntime(t testing.TB, c wasmhost.Config) *wasmhost.Runtime {
	t.Helper()
	rt, err := wasmhost.New(context.Background(), c.WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rt.Close(context.Background()) })
	return rt
}

func load(t testing.TB, rt *wasmhost.Runtime, file string) *wasmhost.Module {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "testdata", file+".wasm"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := rt.Load(context.Background(), b)
	if err != nil {
		t.Fatalf("load %s: %v", file, err)
	}
	return m
}

// newEngine installs name=file pairs.
func newEngine(t testing.TB, rt *wasmhost.Runtime, o Options, comps ...string) *Engine {
	t.Helper()
	if o.Logger == nil {
		o.Logger = quiet
	}
	e := New(rt, o)
	for _, c := range comps {
		name, file, _ := strings.Cut(c, "=")
		e.Install(name, load(t, rt, file))
	}
	return e
}

func run(t testing.TB, e *Engine, target, kind, input string) *lp.Process {
	t.Helper()
	p := lp.New("test", target, kind, []byte(input))
	if err := e.Run(context.Background(), p); err != nil {
		t.Fatalf("run %s/%s: %v", target, kind, err)
	}
	if !p.Finished() {
		t.Fatalf("run %s/%s: not finished", target, kind)
	}
	return p
}

func TestRunChain(t *testing.T) {
	rt := newRuntime(t, wasmhost.NewConfig())
	e := newEngine(t, rt, Options{Node: "n1"}, "a=relay", "b=relay", "c=echo")
	p := run(t, e, "a", "go", "b/c/hi")
	root := p.Root()
	if root.State != lp.StateDone || string(root.Output) != "hi" {
		t.Fatalf("root: %+v", root)
	}
	want := []lp.Step{{Node: "n1", Entry: 0, Outcome: lp.OutcomeCall}, {Node: "n1", Entry: 1, Outcome: lp.OutcomeCall},
		{Node: "n1", Entry: 2, Outcome: lp.OutcomeReply}, {Node: "n1", Entry: 1, Outcome: lp.OutcomeReply},
		{Node: "n1", Entry: 0, Outcome: lp.OutcomeReply}}
	if len(p.Trace) != len(want) {
		t.Fatalf("trace %+v", p.Trace)
	}
	for i, s := range p.Trace {
		if i > 0 && s.Start < p.Trace[i-1].Start {
			t.Errorf("trace[%d] starts at %d, before the step before it (%d)", i, s.Start, p.Trace[i-1].Start)
		}
		if s.Start == 0 {
			t.Errorf("trace[%d] has no start time", i)
		}
		s.Micros, s.Start = 0, 0
		if s != want[i] {
			t.Errorf("trace[%d] = %+v, want %+v", i, s, want[i])
		}
	}
	relay, echo := e.comps["a"].Hash(), e.comps["c"].Hash()
	for i, w := range []struct {
		h     lp.Hash
		steps uint32
	}{{relay, 2}, {relay, 2}, {echo, 1}} {
		if en := p.Entries[i]; en.Module != w.h || en.Steps != w.steps {
			t.Errorf("entry %d: module %s steps %d, want %s %d", i, en.Module.Short(), en.Steps, w.h.Short(), w.steps)
		}
	}
}

func TestRunNotHeld(t *testing.T) {
	rt := newRuntime(t, wasmhost.NewConfig())
	e := newEngine(t, rt, Options{}, "a=relay")
	p := run(t, e, "a", "go", "nosuch/x")
	if r := p.Root(); r.State != lp.StateFailed || r.ErrCode != abi.CodeNoComponent || !strings.Contains(r.ErrMsg, "nosuch") {
		t.Fatalf("root: %+v", r)
	}
	p = run(t, e, "nosuch", "go", "")
	if r := p.Root(); r.ErrCode != abi.CodeNoComponent {
		t.Fatalf("root: %+v", r)
	}
	// Step alone leaves p unchanged and says why.
	p = lp.New("t", "nosuch", "go", nil)
	_, err := e.Step(context.Background(), p)
	var sc interface{ StepCode() uint32 }
	if !errors.Is(err, ErrNotHeld) || !errors.As(err, &sc) || sc.StepCode() != abi.CodeNoComponent || p.Root().State != lp.StateReady {
		t.Fatalf("step: %v, %+v", err, p.Root())
	}
	if _, err := e.Step(context.Background(), run(t, e, "a", "go", "x")); !errors.Is(err, lp.ErrFinished) {
		t.Fatalf("step on a finished process: %v", err)
	}
}

// TestHostileChildren: a relay calls each hostile module; the failure
// reaches the root with the hostile step's code, while good chains run
// alongside and complete.
func TestHostileChildren(t *testing.T) {
	rt := newRuntime(t, wasmhost.NewConfig().WithMemoryLimitPages(64))
	e := newEngine(t, rt, Options{}, "relay=relay", "echo=echo", "loop=loop", "membomb=membomb", "trap=trap",
		"bigreply=bigreply", "bigcont=bigcont", "nooutcome=nooutcome", "twooutcomes=twooutcomes", "badptr=badptr")
	cases := []struct {
		input string
		code  uint32
	}{
		{"loop/", abi.CodeTimeout}, {"membomb/", abi.CodeMemoryLimit}, {"trap/", abi.CodeTrap},
		{"bigreply/", abi.CodeLimit}, {"bigcont/", abi.CodeLimit}, {"nooutcome/", abi.CodeABIViolation},
		{"twooutcomes/", abi.CodeABIViolation}, {"badptr/r", abi.CodeABIViolation},
	}
	stop := make(chan struct{})
	var good sync.WaitGroup
	goodRuns := 0
	good.Go(func() {
		for i := 0; i < 100000; i++ {
			select {
			case <-stop:
				return
			default:
			}
			in := fmt.Sprintf("good-%d", i)
			p := lp.New("t", "relay", "go", []byte("relay/echo/"+in))
			if err := e.Run(context.Background(), p); err != nil || string(p.Root().Output) != in {
				t.Errorf("good run %d: %v %+v", i, err, p.Root())
				return
			}
			goodRuns++
		}
	})
	var wg sync.WaitGroup
	for _, c := range cases {
		wg.Go(func() {
			p := lp.New("t", "relay", "go", []byte(c.input))
			if err := e.Run(context.Background(), p); err != nil {
				t.Errorf("%s: %v", c.input, err)
				return
			}
			child := p.Entries[1]
			if r := p.Root(); r.State != lp.StateFailed || r.ErrCode != c.code || child.ErrCode != c.code ||
				!strings.Contains(r.ErrMsg, strings.TrimSuffix(strings.Split(c.input, "/")[0], "/")) {
				t.Errorf("%s: root %+v, child %+v; want code %d", c.input, r, child, c.code)
			}
		})
	}
	wg.Wait()
	close(stop)
	good.Wait()
	if goodRuns == 0 {
		t.Fatal("no good run completed while the hostile ones ran")
	}
}

func TestVersionRule(t *testing.T) {
	rt := newRuntime(t, wasmhost.NewConfig())
	e := newEngine(t, rt, Options{}, "a=relay", "b=echo")
	relay := e.comps["a"]
	ctx := context.Background()
	p := lp.New("t", "a", "go", []byte("b/x"))
	for i := 0; i < 2; i++ { // a calls b, b replies
		if _, err := e.Step(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	// A new version of a: suspended entries finish in the old one.
	e.Install("a", load(t, rt, "echo"))
	if _, err := e.Step(ctx, p); err != nil {
		t.Fatal(err)
	}
	if r := p.Root(); string(r.Output) != "x" || r.Module != relay.Hash() {
		t.Fatalf("resumed in the wrong version: %+v", r)
	}
	if r := run(t, e, "a", "go", "b/x").Root(); string(r.Output) != "b/x" {
		t.Fatalf("new entry did not run the new version: %+v", r)
	}

	// The old version disappears while an entry is suspended in it.
	e.Install("a", relay)
	p = lp.New("t", "a", "go", []byte("b/y"))
	for i := 0; i < 2; i++ {
		if _, err := e.Step(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	e.Install("a", load(t, rt, "echo"))
	if err := rt.Drop(ctx, relay.Hash()); err != nil {
		t.Fatal(err)
	}
	_, err := e.Step(ctx, p)
	var sc interface{ StepCode() uint32 }
	if !errors.Is(err, ErrVersionMissing) || !errors.As(err, &sc) || sc.StepCode() != abi.CodeVersionGone {
		t.Fatalf("got %v, want ErrVersionMissing", err)
	}
	if err := e.Run(ctx, p); err != nil {
		t.Fatal(err)
	}
	if r := p.Root(); r.ErrCode != abi.CodeVersionGone {
		t.Fatalf("root: %+v", r)
	}
}

func TestCallLimits(t *testing.T) {
	// The engine's own limits: a call deeper than MaxDepth fails the caller.
	rt := newRuntime(t, wasmhost.NewConfig())
	e := newEngine(t, rt, Options{Limits: lp.Limits{MaxDepth: 2}}, "r=relay", "echo=echo")
	if r := run(t, e, "r", "go", "r/echo/x").Root(); string(r.Output) != "x" {
		t.Fatalf("depth 2: %+v", r)
	}
	p := run(t, e, "r", "go", "r/r/echo/x")
	if r := p.Root(); r.ErrCode != abi.CodeLimit || !strings.Contains(r.ErrMsg, "depth") {
		t.Fatalf("depth 3: %+v", r)
	}
	// The host's limits: a continuation over MaxCont traps the step.
	rt2 := newRuntime(t, wasmhost.NewConfig().WithLimits(lp.Limits{MaxEntries: 2}))
	e2 := newEngine(t, rt2, Options{}, "r=relay", "echo=echo", "bigcont=bigcont")
	if r := run(t, e2, "r", "go", "echo/x").Root(); string(r.Output) != "x" {
		t.Fatalf("2 entries: %+v", r)
	}
	if r := run(t, e2, "r", "go", "r/echo/x").Root(); r.ErrCode != abi.CodeLimit || !strings.Contains(r.ErrMsg, "entries") {
		t.Fatalf("3 entries: %+v", r)
	}
	if r := run(t, e2, "bigcont", "go", "").Root(); r.ErrCode != abi.CodeLimit || !strings.Contains(r.ErrMsg, "continuation") {
		t.Fatalf("bigcont: %+v", r)
	}
}

func TestTraceLimit(t *testing.T) {
	rt := newRuntime(t, wasmhost.NewConfig())
	e := newEngine(t, rt, Options{Limits: lp.Limits{MaxTrace: 2}}, "a=relay", "b=relay", "c=echo")
	p := run(t, e, "a", "go", "b/c/hi")
	if len(p.Trace) != 2 || p.TraceDropped != 3 || p.Trace[1].Entry != 0 {
		t.Fatalf("trace %+v dropped %d", p.Trace, p.TraceDropped)
	}
}

func TestProcessDeadline(t *testing.T) {
	rt := newRuntime(t, wasmhost.NewConfig().WithStepTimeout(10*time.Second))
	e := newEngine(t, rt, Options{}, "r=relay", "loop=loop")
	p := lp.New("t", "r", "go", []byte("loop/"))
	p.Deadline = time.Now().Add(100 * time.Millisecond).UnixNano()
	if err := e.Run(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	if r := p.Root(); r.ErrCode != abi.CodeTimeout || p.Entries[1].ErrCode != abi.CodeTimeout {
		t.Fatalf("root %+v child %+v", r, p.Entries[1])
	}
	p = lp.New("t", "r", "go", []byte("x"))
	p.Deadline = time.Now().Add(-time.Second).UnixNano()
	if err := e.Run(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	if r := p.Root(); r.ErrCode != abi.CodeTimeout || r.Steps != 1 {
		t.Fatalf("past deadline: %+v", r)
	}
}

func TestRegistry(t *testing.T) {
	rt := newRuntime(t, wasmhost.NewConfig())
	e := newEngine(t, rt, Options{}, "zeta=echo", "alpha=relay")
	if !e.Holds("zeta") || e.Holds("nosuch") {
		t.Fatal("Holds")
	}
	cs := e.Components()
	if len(cs) != 2 || cs[0].Name != "alpha" || cs[1].Name != "zeta" || cs[1].Hash != e.comps["zeta"].Hash() || cs[1].Size == 0 {
		t.Fatalf("Components: %+v", cs)
	}
	e.Remove("zeta")
	if e.Holds("zeta") || len(e.Components()) != 1 {
		t.Fatal("Remove")
	}
}

// TestConcurrentRuns shares one engine between goroutines (run with -race).
func TestConcurrentRuns(t *testing.T) {
	rt := newRuntime(t, wasmhost.NewConfig().WithMaxInstances(2))
	e := newEngine(t, rt, Options{}, "a=relay", "b=relay", "c=echo")
	var wg sync.WaitGroup
	for g := 0; g < 6; g++ {
		wg.Go(func() {
			for i := 0; i < 50; i++ {
				in := fmt.Sprintf("%d-%d", g, i)
				p := lp.New("t", "a", "go", []byte("b/c/"+in))
				if err := e.Run(context.Background(), p); err != nil || string(p.Root().Output) != in {
					t.Errorf("%s: %v %+v", in, err, p.Root())
					return
				}
			}
		})
		if g == 2 {
			e.Install("c", load(t, rt, "echo")) // concurrent registry update
		}
	}
	wg.Wait()
}

// An LP may not grow past Limits.MaxTotal while it runs, even when each
// reply is within its own limit: the outcome that would cross it fails its
// entry with abi.CodeLimit instead, and the LP stays small enough to migrate
// and to return to its origin.
func TestTotalSizeLimit(t *testing.T) {
	rt := newRuntime(t, wasmhost.NewConfig())
	const limit = 16 << 10
	e := newEngine(t, rt, Options{Limits: lp.Limits{MaxTotal: limit}}, "c=conformance_wat")
	// 300 calls whose replies (0 .. 299 bytes) add up to about 45 KiB.
	p := lp.New("t", "c", "loop", []byte("c big 300"))
	for n := 0; !p.Finished(); n++ {
		if n > 1000 {
			t.Fatal("the process did not finish")
		}
		if _, err := e.Step(context.Background(), p); err != nil {
			t.Fatal(err)
		}
		if size := p.WireSize(); size > limit {
			t.Fatalf("after step %d the LP is %d bytes, over the limit of %d", n, size, limit)
		}
	}
	// The step that crossed the limit may have been a reply too small for a
	// message to fit in its place: only the code is sure.
	if r := p.Root(); r.State != lp.StateFailed || r.ErrCode != abi.CodeLimit {
		t.Fatalf("root: %+v", r)
	}
	// The same run under the default limit replies.
	free := newEngine(t, rt, Options{}, "c=conformance_wat")
	ref := run(t, free, "c", "loop", "c big 300")
	if r := ref.Root(); r.State != lp.StateDone || ref.WireSize() <= limit {
		t.Fatalf("without the limit: root %+v, %d bytes", r, ref.WireSize())
	}

	// One reply: the limit is exact (give or take the varint of the
	// step's duration in the trace, at most two bytes).
	size := run(t, free, "c", "big", "1000").WireSize()
	for _, c := range []struct {
		limit int
		ok    bool
	}{{size + 4, true}, {size - 8, false}} {
		e := newEngine(t, rt, Options{Limits: lp.Limits{MaxTotal: c.limit}}, "c=conformance_wat")
		r := run(t, e, "c", "big", "1000").Root()
		if ok := r.State == lp.StateDone; ok != c.ok || !ok && (r.ErrCode != abi.CodeLimit || !strings.Contains(r.ErrMsg, "reply would make the LP")) {
			t.Errorf("reply making a %d-byte LP under a limit of %d: %+v", size, c.limit, r)
		}
	}

	// A reply smaller than the failure's message: the entry fails with no
	// message and the step is counted as dropped from the trace, so the LP
	// still fits.
	size = run(t, free, "c", "big", "10").WireSize()
	tight := newEngine(t, rt, Options{Limits: lp.Limits{MaxTotal: size - 4}}, "c=conformance_wat")
	p = run(t, tight, "c", "big", "10")
	if r := p.Root(); r.ErrCode != abi.CodeLimit || r.ErrMsg != "" || p.TraceDropped != 1 || p.WireSize() > size-4 {
		t.Errorf("10-byte reply on an LP at the limit: root %+v, trace dropped %d, %d bytes over a limit of %d", r, p.TraceDropped, p.WireSize(), size-4)
	}
}

// growth must bound what applying any outcome and recording its step adds
// to a process's encoding: the fast path of Step trusts it.
func TestGrowthBound(t *testing.T) {
	e := New(nil, Options{Node: strings.Repeat("n", 128), Limits: lp.Limits{MaxDepth: 3}, Logger: quiet})
	name := strings.Repeat("a", 64)
	results := []wasmhost.Result{
		{Outcome: lp.OutcomeReply},
		{Outcome: lp.OutcomeReply, Output: make([]byte, 200)},
		{Outcome: lp.OutcomeFail, Code: 1<<32 - 1, Msg: strings.Repeat("m", 4096)},
		{Outcome: lp.OutcomeFail, Code: 1},
		{Outcome: lp.OutcomeCall, Target: name, Kind: name, Input: make([]byte, 300), Cont: make([]byte, 70000)},
		{Outcome: lp.OutcomeCall, Target: "x", Kind: "y"},
	}
	for depth := range 5 { // at depth 3 the calls are refused: apply fails them with its own message
		for _, entries := range []int{0, 130} {
			for i, res := range results {
				p := lp.New("gw", "t", "k", nil)
				for range entries { // finished siblings push Active and the entry count past 127
					if err := p.Call("t", "k", nil, nil, lp.Limits{}); err != nil {
						t.Fatal(err)
					}
					_ = p.Reply(nil)
				}
				for range depth {
					if err := p.Call("t", "k", nil, []byte("c"), lp.Limits{}); err != nil {
						t.Fatal(err)
					}
				}
				for j := range 127 { // the trace count crosses 127 with the step
					p.Record(lp.Step{Node: "x", Entry: int32(j)}, 1000)
				}
				p.Entries[p.Active].Steps = 127
				before := p.WireSize()
				p.Entries[p.Active].Steps++ // Step counts the step before it measures
				s := lp.Step{Node: e.node, Entry: -1 << 31, Micros: 1<<32 - 1}
				bound := growth(&res, &s)
				s.Outcome = e.apply(p, &res)
				p.Record(s, e.maxTrace)
				if grew := p.WireSize() - before; grew > bound {
					t.Errorf("depth %d, %d entries, result %d: grew %d bytes, bound %d", depth, entries, i, grew, bound)
				}
			}
		}
	}
}
