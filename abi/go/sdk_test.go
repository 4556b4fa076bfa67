//go:build !wasip1

package tsubame

import (
	"bytes"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
)

// entry is one LP entry as the SDK's tests model the host: it runs step
// until the handler replies or fails, answering each call with answer.
type entry struct {
	t      *testing.T
	kindS  []byte
	in     []byte
	contB  []byte
	res    []result
	answer func(target, kind string, input []byte) result

	done  bool
	out   result
	ncall int
	steps int
	logs  []string
	pages int32 // what memory.size says

	alloc, allocated uint64 // bytes a step of "grow" allocates, bytes allocated
}

type result struct {
	code uint32
	data []byte
}

func (e *entry) kind() []byte  { return e.kindS }
func (e *entry) input() []byte { return e.in }
func (e *entry) cont() []byte  { return e.contB }
func (e *entry) calls() int32  { return int32(len(e.res)) }
func (e *entry) outcome() {
	if e.done {
		e.t.Fatalf("second outcome in one step")
	}
	e.done = true
}

func (e *entry) childCode(i int32) int32 {
	if i < 0 || int(i) >= len(e.res) {
		return -1
	}
	return int32(e.res[i].code)
}

func (e *entry) child(i int32) ([]byte, bool) {
	if i < 0 || int(i) >= len(e.res) {
		return nil, false
	}
	return e.res[i].data, true
}

func (e *entry) reply(b []byte) { e.outcome(); e.out = result{0, b} }
func (e *entry) fail(code uint32, msg string) {
	e.outcome()
	e.out = result{code, []byte(msg)}
}
func (e *entry) log(level int32, msg string) { e.logs = append(e.logs, msg) }
func (e *entry) memoryPages() int32          { return e.pages }
func (e *entry) allocs() uint64              { return e.allocated }

func (e *entry) call(target, kind string, input, cont []byte) {
	e.outcome()
	e.ncall++
	e.contB = cont
	e.res = append(e.res, e.answer(target, kind, input))
	e.done = false // the entry resumes
}

// run steps the entry to its end and returns its result.
func (e *entry) run() result {
	e.t.Helper()
	testHost = e
	defer func() { testHost = nil }()
	for e.steps = 1; e.steps < 100; e.steps++ {
		n := e.ncall
		step()
		if e.done {
			return e.out
		}
		if e.ncall == n {
			e.t.Fatalf("step %d ended without an outcome", e.steps)
		}
	}
	e.t.Fatalf("no result after %d steps", e.steps)
	return result{}
}

func upper(target, kind string, input []byte) result {
	if target == "down" {
		return result{7, []byte("down is unavailable")}
	}
	return result{0, bytes.ToUpper(input)}
}

func newEntry(t *testing.T, kind, input string) *entry {
	return &entry{t: t, kindS: []byte(kind), in: []byte(input), answer: upper}
}

// The handlers under test, registered once for the whole package.
func init() {
	Handle("say", func(c *Ctx) Outcome {
		if c.Calls() == 0 {
			return c.Call("greet", "upper", c.Input(), []byte("state"))
		}
		if string(c.Cont()) != "state" {
			return c.Fail(200, "lost continuation "+string(c.Cont()))
		}
		out, err := c.Child(c.Calls() - 1)
		if err != nil {
			return c.FailErr(err)
		}
		return c.Reply(append(out, '!'))
	})
	Handle("nothing", func(c *Ctx) Outcome { return Outcome{} })
	Handle("zero", func(c *Ctx) Outcome { return c.Fail(0, "oops") })
	HandleSeq("three", func(s *Seq) ([]byte, error) {
		var out []byte
		for _, w := range bytes.Fields(s.Input()) {
			r, err := s.Call("c", "upper", w)
			if err != nil {
				return nil, fmt.Errorf("word %q: %w", w, err)
			}
			out = append(append(out, r...), '.')
		}
		return out, nil
	})
	HandleSeq("forward", func(s *Seq) ([]byte, error) {
		_, err := s.Call("down", "x", nil)
		return nil, err
	})
	HandleSeq("plain", func(s *Seq) ([]byte, error) { return nil, errors.New("plain error") })
	HandleSeq("typed", func(s *Seq) ([]byte, error) { return nil, &Error{Code: 418, Msg: "teapot"} })
	HandleSeq("swallow", func(s *Seq) ([]byte, error) {
		func() {
			defer func() { recover() }()
			s.Call("c", "upper", []byte("a"))
		}()
		return []byte("swallowed"), nil
	})
	HandleSeq("flaky", func(s *Seq) ([]byte, error) {
		// Decides its calls from state outside the entry: nondeterministic.
		flakyRuns++
		if _, err := s.Call("c", "upper", []byte("a")); err != nil {
			return nil, err
		}
		if flakyRuns >= 3 {
			return []byte("short"), nil
		}
		s.Call("c", "upper", []byte(fmt.Sprint(flakyRuns)))
		return []byte("long"), nil
	})
	HandleSeq("last", func(s *Seq) ([]byte, error) {
		var out []byte
		for i := 0; i < 4; i++ {
			r, err := s.Call("c", "upper", s.Input())
			if err != nil {
				return nil, err
			}
			out = r
		}
		return out, nil
	})
	Handle("grow", func(c *Ctx) Outcome {
		e := testHost.(*entry)
		e.pages += growBy
		e.allocated += e.alloc
		return c.Reply(nil)
	})
	HandleSeq("boom", func(s *Seq) ([]byte, error) { panic("boom") })
}

var flakyRuns int

func TestExplicit(t *testing.T) {
	e := newEntry(t, "say", "hello")
	if r := e.run(); r.code != 0 || string(r.data) != "HELLO!" {
		t.Fatalf("got %d %q, want HELLO!", r.code, r.data)
	}
	if e.steps != 2 {
		t.Fatalf("took %d steps, want 2", e.steps)
	}
}

func TestSequential(t *testing.T) {
	e := newEntry(t, "three", "a bb ccc")
	r := e.run()
	if r.code != 0 || string(r.data) != "A.BB.CCC." {
		t.Fatalf("got %d %q", r.code, r.data)
	}
	if e.steps != 4 || e.ncall != 3 {
		t.Fatalf("%d steps, %d calls; want 4 and 3", e.steps, e.ncall)
	}
	want := []byte("TSQ1")
	for _, w := range []string{"a", "bb", "ccc"} {
		want = appendU64(want, Fingerprint("c", "upper", []byte(w)))
	}
	if !bytes.Equal(e.contB, want) {
		t.Fatalf("continuation %x, want %x", e.contB, want)
	}
}

func appendU64(b []byte, v uint64) []byte {
	for i := 0; i < 8; i++ {
		b = append(b, byte(v>>(8*i)))
	}
	return b
}

func TestFailures(t *testing.T) {
	for _, tc := range []struct {
		kind, input string
		code        uint32
		msg         string // a substring of the message
	}{
		{"forward", "", 7, "down is unavailable"},
		{"plain", "", CodeError, "plain error"},
		{"typed", "", 418, "teapot"},
		{"nothing", "", CodeABIViolation, "returned no outcome"},
		{"zero", "", CodeABIViolation, "code 0: oops"},
		{"swallow", "", CodeABIViolation, "recovered the panic"},
		{"unknown", "", CodeNotFound, `no handler for kind "unknown"`},
	} {
		t.Run(tc.kind, func(t *testing.T) {
			r := newEntry(t, tc.kind, tc.input).run()
			if r.code != tc.code || !strings.Contains(string(r.data), tc.msg) {
				t.Fatalf("got %d %q, want %d containing %q", r.code, r.data, tc.code, tc.msg)
			}
		})
	}
}

// A wrapped child failure keeps the child's code and gains the context.
func TestSequentialWrappedFailure(t *testing.T) {
	e := newEntry(t, "three", "a b")
	e.answer = func(target, kind string, input []byte) result {
		if string(input) == "b" {
			return result{503, []byte("busy")}
		}
		return upper(target, kind, input)
	}
	r := e.run()
	if r.code != 503 || string(r.data) != `word "b": busy (code 503)` {
		t.Fatalf("got %d %q", r.code, r.data)
	}
}

func TestNondeterministic(t *testing.T) {
	// A different call at position 1.
	e := newEntry(t, "three", "a b")
	e.answer = func(target, kind string, input []byte) result {
		if string(input) == "b" {
			e.in = []byte("a c") // the input changes under the handler
		}
		return upper(target, kind, input)
	}
	if r := e.run(); r.code != CodeABIViolation || string(r.data) != "nondeterministic replay at call 1" {
		t.Fatalf("changed call: got %d %q", r.code, r.data)
	}
	// A handler that returns before making its recorded calls.
	flakyRuns = 0
	e = newEntry(t, "flaky", "")
	if r := e.run(); r.code != CodeABIViolation || string(r.data) != "nondeterministic replay at call 1" {
		t.Fatalf("missing call: got %d %q", r.code, r.data)
	}
}

func TestMalformedContinuation(t *testing.T) {
	for _, c := range []struct {
		cont  string
		calls int
	}{{"", 1}, {"TSQ1", 1}, {"XXXX12345678", 1}, {"TSQ1123", 0}, {"TSQ112345678", 2}} {
		e := newEntry(t, "three", "a b c")
		e.contB = []byte(c.cont)
		for i := 0; i < c.calls; i++ {
			e.res = append(e.res, result{0, []byte("A")})
		}
		if r := e.run(); r.code != CodeABIViolation || !strings.Contains(string(r.data), "malformed sequential continuation") {
			t.Fatalf("cont %q after %d calls: got %d %q", c.cont, c.calls, r.code, r.data)
		}
	}
}

func TestForeignPanicIsNotRecovered(t *testing.T) {
	defer func() {
		if r := recover(); r != "boom" {
			t.Fatalf("recovered %v, want the handler's own panic", r)
		}
		testHost = nil
	}()
	newEntry(t, "boom", "").run()
}

func TestChildOutOfRange(t *testing.T) {
	var c Ctx
	testHost = newEntry(t, "say", "")
	defer func() { testHost = nil }()
	if _, err := c.Child(0); err == nil {
		t.Fatal("Child(0) before any call succeeded")
	}
}

// The vector ABI.md §6 gives, so every SDK can check its fingerprint.
func TestFingerprintVector(t *testing.T) {
	if got := Fingerprint("greet", "greet", []byte("world")); got != 0xdc1131a0e9ef3407 {
		t.Fatalf("Fingerprint(greet, greet, world) = %#016x", got)
	}
}

func TestStepAllocations(t *testing.T) {
	e := newEntry(t, "last", "abc")
	e.run() // grow the buffers
	testHost = e
	defer func() { testHost = nil }()
	allocs := testing.AllocsPerRun(100, func() {
		e.done = false
		step() // the final step: four replayed calls and the reply
	})
	if !e.done || string(e.out.data) != "ABC" {
		t.Fatalf("replayed step gave %q", e.out.data)
	}
	// The fake host copies the reply: one allocation. The SDK adds none.
	if allocs != 1 {
		t.Fatalf("%v allocations per replayed step, want 1", allocs)
	}
}

// The steps drive the collector: a step that grows memory collects.
func TestStepCollects(t *testing.T) {
	var n int
	collect = func() { n++ }
	defer func() { collect = runtime.GC }()
	saved := st.gc
	defer func() { st.gc = saved }()
	e := newEntry(t, "grow", "")
	testHost = e
	defer func() { testHost = nil }()
	steps := func(k int) int {
		n = 0
		for i := 0; i < k; i++ {
			e.done = false
			step()
		}
		return n
	}
	SetGCBudget(DefaultGCBudget)
	growBy = 1
	if got := steps(5); got != 5 {
		t.Errorf("5 steps that grow memory: %d collections, want 5", got)
	}
	growBy = 0
	if got := steps(1000); got != 0 {
		t.Errorf("1000 steps allocating nothing: %d collections", got)
	}
	// Up to maxCheckEvery steps pass before the policy notices allocation
	// started, so the first collection may come late.
	e.alloc = DefaultGCBudget / 100
	if got := steps(1000); got < 10-maxCheckEvery/100 || got > 10 {
		t.Errorf("1000 steps allocating 1%% of the budget each: %d collections, want 10 or a few fewer", got)
	}
	SetGCBudget(0)
	growBy = 1
	if got := steps(100); got != 0 {
		t.Errorf("collections turned off, memory and heap growing: %d collections", got)
	}
	growBy = 0
}

// step is what the SDK does after each step.
func (g *gcPolicy) step(grew bool, allocs func() uint64) bool {
	return g.tick(grew) && g.afterStep(grew, allocs)
}

func TestGCPolicy(t *testing.T) {
	for _, rate := range []uint64{0, 1, 4 << 10, 64 << 10, 1 << 20, 15 << 20, 40 << 20} {
		g := gcPolicy{budget: DefaultGCBudget}
		var counter, atGC uint64
		reads, collections := 0, 0
		allocs := func() uint64 { reads++; return counter }
		const steps = 100000
		for i := 0; i < steps; i++ {
			counter += rate
			if g.step(false, allocs) {
				collections++
				// Never much past the budget: at most one step's allocation.
				if used := counter - atGC; used < g.budget && rate < g.budget || used >= g.budget+rate {
					t.Fatalf("rate %d: collected after %d bytes, budget %d", rate, used, g.budget)
				}
				atGC = counter
			}
		}
		want := 0
		if rate > 0 {
			want = steps / int((DefaultGCBudget+rate-1)/rate) // one per step at most
		}
		if collections != want {
			t.Errorf("rate %d: %d collections, want %d", rate, collections, want)
		}
		// Reads cost ~8 µs: rare when idle, a few per collection otherwise.
		if maxReads := steps/maxCheckEvery + 1 + collections*20; reads > maxReads {
			t.Errorf("rate %d: %d reads of the counter for %d collections, want at most %d", rate, reads, collections, maxReads)
		}
		t.Logf("rate %d B/step: %d collections, %d reads in %d steps", rate, collections, reads, steps)
	}
	g := gcPolicy{budget: DefaultGCBudget}
	never := func() uint64 { return 0 }
	for i := 0; i < 3; i++ {
		if !g.step(true, never) {
			t.Fatalf("a step that grew memory did not collect")
		}
	}
	g = gcPolicy{}
	if g.step(true, func() uint64 { t.Fatal("read with collections off"); return 0 }) {
		t.Fatal("collected with collections off")
	}
}

var growBy int32
