package lp

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func mustCall(t testing.TB, p *Process, target, kind string, input, cont []byte) {
	t.Helper()
	if err := p.Call(target, kind, input, cont, DefaultLimits); err != nil {
		t.Fatalf("call %s.%s: %v", target, kind, err)
	}
}

func mustValid(t testing.TB, p *Process) {
	t.Helper()
	if err := p.Validate(); err != nil {
		t.Fatalf("validate: %v", err)
	}
}

func TestNew(t *testing.T) {
	p := New("gw", "front", "get", []byte("in"))
	mustValid(t, p)
	if p.Active != 0 || p.Finished() || p.Depth() != 0 {
		t.Fatalf("active %d finished %v depth %d, want 0 false 0", p.Active, p.Finished(), p.Depth())
	}
	if e := p.ActiveEntry(); e != p.Root() || e.State != StateReady || e.Parent != NoEntry || string(e.Input) != "in" {
		t.Fatalf("root entry = %+v", e)
	}
	if q := New("gw", "front", "get", nil); q.ID == p.ID {
		t.Fatal("two processes got the same ID")
	}
}

func TestCallAndReply(t *testing.T) {
	p := New("gw", "front", "get", []byte("in"))
	mustCall(t, p, "cache", "get", []byte("key"), []byte("cont0"))
	mustValid(t, p)
	root := &p.Entries[0]
	if root.State != StateWaiting || string(root.Cont) != "cont0" {
		t.Fatalf("caller after call: %+v", *root)
	}
	if p.Active != 1 || p.Depth() != 1 {
		t.Fatalf("active %d depth %d, want 1 1", p.Active, p.Depth())
	}
	child := p.ActiveEntry()
	if child.Parent != 0 || child.Target != "cache" || child.Kind != "get" || string(child.Input) != "key" || child.State != StateReady {
		t.Fatalf("child: %+v", *child)
	}
	if got := p.Children(0); len(got) != 0 {
		t.Fatalf("children of a caller whose call is running = %v, want none", got)
	}

	if err := p.Reply([]byte("hit")); err != nil {
		t.Fatal(err)
	}
	mustValid(t, p)
	child = &p.Entries[1]
	if child.State != StateDone || string(child.Output) != "hit" || child.Input != nil || child.Cont != nil {
		t.Fatalf("child after reply: %+v", *child)
	}
	if p.Active != 0 || p.Entries[0].State != StateReady {
		t.Fatalf("active %d root %s, want 0 ready", p.Active, p.Entries[0].State)
	}
	if got := p.Children(0); !slices.Equal(got, []int32{1}) {
		t.Fatalf("children = %v, want [1]", got)
	}
	// The caller keeps its continuation until it finishes itself.
	if string(p.Entries[0].Cont) != "cont0" {
		t.Fatalf("root continuation = %q", p.Entries[0].Cont)
	}
}

func TestFail(t *testing.T) {
	p := New("gw", "front", "get", nil)
	mustCall(t, p, "db", "q", nil, nil)
	if err := p.Fail(0, "trap"); err != nil {
		t.Fatal(err)
	}
	mustValid(t, p)
	e := p.Entries[1]
	if e.State != StateFailed || e.ErrCode != 1 || e.ErrMsg != "trap" {
		t.Fatalf("failed child = %+v, want failed code 1 (a zero code becomes 1)", e)
	}
	if p.Active != 0 {
		t.Fatalf("active %d, want the parent", p.Active)
	}
	if err := p.Fail(503, "down"); err != nil {
		t.Fatal(err)
	}
	if !p.Finished() || p.Root().ErrCode != 503 || p.ActiveEntry() != nil {
		t.Fatalf("root = %+v finished %v", *p.Root(), p.Finished())
	}
	mustValid(t, p)
}

func TestFinishCompaction(t *testing.T) {
	p := New("gw", "a", "k", []byte("in-a"))
	mustCall(t, p, "b", "k", []byte("in-b"), []byte("cont-a"))
	mustCall(t, p, "c", "k", []byte("in-c"), []byte("cont-b"))
	if err := p.Reply([]byte("out-c")); err != nil { // c done; b active
		t.Fatal(err)
	}
	if err := p.Fail(7, "b broke"); err != nil { // b failed; a active
		t.Fatal(err)
	}
	// b finished: its own children's results are gone, its input and
	// continuation too, but its failure is kept for a to read.
	b, c := p.Entries[1], p.Entries[2]
	if c.Output != nil || c.State != StateDone {
		t.Fatalf("grandchild after its caller finished: %+v, want done with no output", c)
	}
	if b.Input != nil || b.Cont != nil || b.ErrMsg != "b broke" || b.ErrCode != 7 {
		t.Fatalf("b after failing: %+v", b)
	}
	mustCall(t, p, "d", "k", nil, []byte("cont-a2"))
	if err := p.Reply([]byte("out-d")); err != nil {
		t.Fatal(err)
	}
	if got := p.Children(0); !slices.Equal(got, []int32{1, 3}) {
		t.Fatalf("children of root = %v, want [1 3] in call order", got)
	}
	if err := p.Reply([]byte("out-a")); err != nil {
		t.Fatal(err)
	}
	mustValid(t, p)
	if !p.Finished() {
		t.Fatal("not finished after root reply")
	}
	root := p.Entries[0]
	if string(root.Output) != "out-a" || root.Input != nil || root.Cont != nil {
		t.Fatalf("root = %+v", root)
	}
	if p.Entries[1].ErrMsg != "" || p.Entries[3].Output != nil {
		t.Fatalf("root's children kept results after root finished: %+v %+v", p.Entries[1], p.Entries[3])
	}
	if len(p.Entries) != 4 {
		t.Fatalf("%d entries, want 4: entries stay so indexes stay meaningful", len(p.Entries))
	}
	for _, err := range []error{p.Reply(nil), p.Fail(1, ""), p.Call("x", "y", nil, nil, DefaultLimits)} {
		if !errors.Is(err, ErrFinished) {
			t.Fatalf("transition on a finished process: %v, want ErrFinished", err)
		}
	}
}

func TestDepth(t *testing.T) {
	p := New("gw", "t0", "k", nil)
	for i := 1; i <= 10; i++ {
		mustCall(t, p, "t", "k", nil, nil)
		if p.Depth() != i {
			t.Fatalf("depth %d after %d calls", p.Depth(), i)
		}
	}
	for i := 9; i >= 0; i-- {
		if err := p.Reply(nil); err != nil {
			t.Fatal(err)
		}
		if p.Depth() != i {
			t.Fatalf("depth %d, want %d", p.Depth(), i)
		}
	}
	mustValid(t, p)
}

func TestCallLimits(t *testing.T) {
	lim := Limits{MaxEntries: 4, MaxDepth: 2, MaxCont: 8, MaxBytes: 16, MaxName: 5}
	tests := []struct {
		name   string
		setup  func(p *Process) // brings p to the state before the failing call
		target string
		input  []byte
		cont   []byte
		what   string
	}{
		{"entries", func(p *Process) {
			for range 3 {
				_ = p.Call("t", "k", nil, nil, lim)
				_ = p.Reply(nil)
			}
		}, "t", nil, nil, "entries"},
		{"depth", func(p *Process) {
			_ = p.Call("t", "k", nil, nil, lim)
			_ = p.Call("t", "k", nil, nil, lim)
		}, "t", nil, nil, "call depth"},
		{"continuation", func(*Process) {}, "t", nil, make([]byte, 9), "continuation bytes"},
		{"input", func(*Process) {}, "t", make([]byte, 17), nil, "input bytes"},
		{"name", func(*Process) {}, "target", nil, nil, "name bytes"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := New("gw", "root", "k", nil)
			tc.setup(p)
			mustValid(t, p)
			before := len(p.Entries)
			err := p.Call(tc.target, "k", tc.input, tc.cont, lim)
			var le *LimitError
			if !errors.As(err, &le) || le.What != tc.what {
				t.Fatalf("err = %v, want a LimitError on %q", err, tc.what)
			}
			if len(p.Entries) != before || p.ActiveEntry().State != StateReady {
				t.Fatal("a refused call changed the process")
			}
			// At the limit exactly the call is accepted.
			if tc.name == "continuation" || tc.name == "input" {
				if err := p.Call("t", "k", tc.input[:min(len(tc.input), 16)], tc.cont[:min(len(tc.cont), 8)], lim); err != nil {
					t.Fatalf("call at the limit: %v", err)
				}
			}
		})
	}
	p := New("gw", "root", "k", nil)
	if err := p.Call("", "k", nil, nil, lim); err == nil {
		t.Fatal("call with an empty target accepted")
	}
	// Zero limits mean the defaults.
	if err := p.Call("t", "k", nil, make([]byte, DefaultLimits.MaxCont+1), Limits{}); err == nil {
		t.Fatal("zero Limits did not apply the default continuation limit")
	}
}

func TestRecord(t *testing.T) {
	var p Process
	for i := range 5 {
		p.Record(Step{Node: "n", Entry: int32(i), Outcome: OutcomeReply}, 3)
	}
	var got []int32
	for _, s := range p.Trace {
		got = append(got, s.Entry)
	}
	if !slices.Equal(got, []int32{2, 3, 4}) || p.TraceDropped != 2 {
		t.Fatalf("trace %v dropped %d, want [2 3 4] dropped 2", got, p.TraceDropped)
	}
	p.Record(Step{Entry: 9}, 0)
	if len(p.Trace) != 3 || p.TraceDropped != 3 {
		t.Fatalf("max 0: trace %d dropped %d, want 3 and 3", len(p.Trace), p.TraceDropped)
	}
	// A smaller max than the current trace trims it at once.
	p.Record(Step{Entry: 10}, 1)
	if len(p.Trace) != 1 || p.Trace[0].Entry != 10 || p.TraceDropped != 6 {
		t.Fatalf("trace %+v dropped %d", p.Trace, p.TraceDropped)
	}
}

func TestValidate(t *testing.T) {
	valid := func() *Process {
		p := New("gw", "a", "k", nil)
		mustCall(t, p, "b", "k", nil, nil)
		mustCall(t, p, "c", "k", nil, nil)
		_ = p.Reply(nil) // c done, b active, a waiting
		return p
	}
	mustValid(t, valid())
	tests := []struct {
		name   string
		mutate func(p *Process)
		want   string
	}{
		{"no entries", func(p *Process) { p.Entries = nil }, "no entries"},
		{"root parent", func(p *Process) { p.Entries[0].Parent = 1 }, "root entry has a parent"},
		{"active high", func(p *Process) { p.Active = 3 }, "out of range"},
		{"active low", func(p *Process) { p.Active = -2 }, "out of range"},
		{"forward parent", func(p *Process) { p.Entries[1].Parent = 2 }, "entry 1 has parent 2"},
		{"self parent", func(p *Process) { p.Entries[1].Parent = 1 }, "entry 1 has parent 1"},
		{"negative parent", func(p *Process) { p.Entries[2].Parent = -1 }, "entry 2 has parent -1"},
		{"empty target", func(p *Process) { p.Entries[2].Target = "" }, "empty target"},
		{"empty kind", func(p *Process) { p.Entries[0].Kind = "" }, "empty target or kind"},
		{"active not ready", func(p *Process) { p.Entries[1].State = StateWaiting }, "want ready"},
		{"caller not waiting", func(p *Process) { p.Entries[0].State = StateReady }, "want waiting"},
		{"two active", func(p *Process) { p.Entries[2].State = StateReady }, "not on the active chain"},
		{"failed code 0", func(p *Process) { p.Entries[2].State, p.Entries[2].ErrCode = StateFailed, 0 }, "code 0"},
		{"finished with live entry", func(p *Process) { p.Active = NoEntry }, "not on the active chain"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := valid()
			tc.mutate(p)
			err := p.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one containing %q", err, tc.want)
			}
		})
	}
}
