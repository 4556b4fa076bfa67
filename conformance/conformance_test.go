package conformance

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/tsubame-rt/tsubame/abi"
	tsubame "github.com/tsubame-rt/tsubame/abi/go"
	"github.com/tsubame-rt/tsubame/lp"
	"github.com/tsubame-rt/tsubame/node/engine"
	"github.com/tsubame-rt/tsubame/wasmhost"
)

// languages lists every language with a conformance module,
// testdata/conformance_<lang>.wasm. Adding a language is adding it here.
var languages = []string{"go", "c", "rust", "as", "wat"}

// chain is the mixed-language chain, head first.
var chain = []string{"chain_go", "chain_rust", "chain_c", "chain_as"}

func module(lang string) string { return "conformance_" + lang }

func readModule(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "testdata", name+".wasm"))
	if err != nil {
		t.Fatalf("read module: %v (run `make components`)", err)
	}
	return b
}

// logRecord is one record a component logged.
type logRecord struct {
	level     slog.Level
	msg, comp string
}

// capture is a slog.Handler that keeps the records the host logs.
type capture struct {
	mu      sync.Mutex
	records []logRecord
}

func (c *capture) Enabled(context.Context, slog.Level) bool { return true }
func (c *capture) WithAttrs([]slog.Attr) slog.Handler       { return c }
func (c *capture) WithGroup(string) slog.Handler            { return c }
func (c *capture) Handle(_ context.Context, r slog.Record) error {
	rec := logRecord{level: r.Level, msg: r.Message}
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "component" {
			rec.comp = a.Value.String()
		}
		return true
	})
	c.mu.Lock()
	c.records = append(c.records, rec)
	c.mu.Unlock()
	return nil
}

func (c *capture) find(comp, msg string) (logRecord, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, r := range c.records {
		if r.comp == comp && r.msg == msg {
			return r, true
		}
	}
	return logRecord{}, false
}

// fixture is one engine (node/engine: the in-process step loop every node
// runs) with every conformance and chain module installed under its file
// name.
type fixture struct {
	rt   *wasmhost.Runtime
	logs *capture
	step func(context.Context, *lp.Process) error // one step, outcome applied
	run  func(context.Context, *lp.Process) error // steps until the root finishes
}

var (
	sharedOnce sync.Once
	shared     *fixture
	sharedErr  error
)

// host returns the fixture shared by the tests of this package: loading the
// Go modules costs about half a second each, so it happens once.
func host(t testing.TB) *fixture {
	t.Helper()
	sharedOnce.Do(func() {
		names := append([]string{}, chain...)
		for _, l := range languages {
			names = append(names, module(l))
		}
		shared, sharedErr = newFixture(context.Background(), names)
	})
	if sharedErr != nil {
		t.Fatal(sharedErr)
	}
	return shared
}

func newFixture(ctx context.Context, names []string) (*fixture, error) {
	logs := &capture{}
	rt, err := wasmhost.New(ctx, wasmhost.NewConfig().WithLogger(slog.New(logs)))
	if err != nil {
		return nil, err
	}
	eng := engine.New(rt, engine.Options{Node: "conformance", Logger: slog.New(logs)})
	for _, n := range names {
		b, err := os.ReadFile(filepath.Join("..", "testdata", n+".wasm"))
		if err != nil {
			return nil, fmt.Errorf("read %s: %w (run `make components`)", n, err)
		}
		m, err := rt.Load(ctx, b)
		if err != nil {
			return nil, fmt.Errorf("load %s: %w", n, err)
		}
		eng.Install(n, m)
	}
	step := func(ctx context.Context, p *lp.Process) error {
		_, err := eng.Step(ctx, p)
		return err
	}
	return &fixture{rt: rt, logs: logs, step: step, run: eng.Run}, nil
}

// exec runs target/kind with input to the end and returns the root entry.
func (f *fixture) exec(t testing.TB, target, kind string, input []byte) *lp.Process {
	t.Helper()
	p := lp.New("conformance", target, kind, input)
	if err := f.run(t.Context(), p); err != nil {
		t.Fatalf("run %s/%s: %v", target, kind, err)
	}
	return p
}

// want is the expected end of a case: a reply, or a failure with a code and
// a message (a substring; "" for any).
type want struct {
	reply []byte
	code  uint32
	msg   string
	steps uint32 // steps of the root entry; 0 for any
}

func reply(s string) want { return want{reply: []byte(s)} }

func failure(code uint32, msg string) want { return want{code: code, msg: msg} }

func (w want) check(t *testing.T, p *lp.Process) {
	t.Helper()
	r := p.Root()
	switch {
	case w.code == 0 && r.State != lp.StateDone:
		t.Fatalf("root %s with %d %q, want reply %s", r.State, r.ErrCode, r.ErrMsg, short(w.reply))
	case w.code == 0 && !bytes.Equal(r.Output, w.reply):
		t.Fatalf("reply %s, want %s", short(r.Output), short(w.reply))
	case w.code != 0 && r.State != lp.StateFailed:
		t.Fatalf("root %s with reply %s, want failure %d %q", r.State, short(r.Output), w.code, w.msg)
	case w.code != 0 && (r.ErrCode != w.code || !strings.Contains(r.ErrMsg, w.msg)):
		t.Fatalf("failure %d %q, want %d containing %q", r.ErrCode, r.ErrMsg, w.code, w.msg)
	}
	if w.steps != 0 && r.Steps != w.steps {
		t.Fatalf("root entry ran %d steps, want %d", r.Steps, w.steps)
	}
}

func short(b []byte) string {
	if len(b) > 64 {
		return fmt.Sprintf("%q... (%d bytes)", b[:64], len(b))
	}
	return strconv.Quote(string(b))
}

// pattern is what kind "big" replies: byte i is 'a' + i%26.
func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte('a' + i%26)
	}
	return b
}

// behaviour is one row of the table. input may name "{self}" (the module
// under test) and "{other}" (the next language's module, so calls cross
// languages).
type behaviour struct {
	name, kind string
	input      []byte
	want       want
}

func behaviours() []behaviour {
	const MiB = 1 << 20
	big := pattern(MiB)
	var sum uint32
	for _, b := range big {
		sum += uint32(b)
	}
	in := func(s string) []byte { return []byte(s) }
	return []behaviour{
		{"reply", "echo", in("hello"), reply("hello")},
		{"reply empty input", "echo", nil, reply("")},
		{"reply binary", "echo", []byte{0, 1, 2, 255, 0}, want{reply: []byte{0, 1, 2, 255, 0}}},
		{"input at the limit", "size", big, reply(fmt.Sprintf("%d %d", MiB, sum))},
		{"echo at the limit", "echo", big, want{reply: big}},
		{"reply at the limit", "big", in(strconv.Itoa(abi.MaxReply)), want{reply: pattern(abi.MaxReply)}},
		{"reply over the limit", "big", in(strconv.Itoa(abi.MaxReply + 1)), failure(abi.CodeLimit, "")},
		{"fail with code and message", "fail", in("418 I'm a teapot"), failure(418, "I'm a teapot")},
		{"fail with code 0", "fail", in("0 zero"), failure(abi.CodeABIViolation, "")},
		{"trap", "trap", nil, failure(abi.CodeTrap, "")},
		{"unknown kind", "nosuch", nil, failure(404, `no handler for kind "nosuch"`)},
		{"call and resume", "call", in("{self} echo hi"), want{reply: in("hi"), steps: 2}},
		{"call another language", "call", in("{other} greet you"), reply("Hello, you")},
		{"call with empty input", "call", in("{other} echo "), reply("")},
		{"call with large input", "call", append(in("{other} echo "), big[:MiB-64]...), want{reply: big[:MiB-64]}},
		{"nested calls", "call", in("{other} call {self} call {other} echo deep"), reply("deep")},
		{"child failure forwarded", "call", in("{other} fail 503 down for a while"), failure(503, "down for a while")},
		{"nested failure forwarded", "call", in("{other} call {self} fail 410 gone"), failure(410, "gone")},
		{"child trap forwarded", "call", in("{other} trap"), failure(abi.CodeTrap, "")},
		{"missing component forwarded", "call", in("nosuch echo x"), failure(abi.CodeNoComponent, "")},
		{"invalid target name", "call", in("9lives echo x"), failure(abi.CodeABIViolation, "")},
		{"read child error", "catch", in("{other} fail 409 conflict"), reply("failed 409: conflict")},
		{"read child reply", "catch", in("{other} echo fine"), reply("ok: fine")},
		{"continuation empty", "cont", in("{other} 0"), reply("cont ok 0")},
		{"continuation small", "cont", in("{other} 5"), reply("cont ok 5")},
		{"continuation at the limit", "cont", in(fmt.Sprintf("{other} %d", abi.MaxCont)), reply(fmt.Sprintf("cont ok %d", abi.MaxCont))},
		{"continuation over the limit", "cont", in(fmt.Sprintf("{other} %d", abi.MaxCont+1)), failure(abi.CodeLimit, "")},
		{"sequential", "seq", in("{other} echo x"), want{reply: in("x|x"), steps: 3}},
		{"sequential chained results", "seq", in("{other} greet x"), reply("Hello, x|Hello, Hello, x")},
		{"sequential failure forwarded", "seq", in("{other} fail 409 conflict"), failure(409, "conflict")},
		{"sequential inside explicit", "call", in("{other} seq {self} echo y"), reply("y|y")},
		{"sequential loop", "loop", in("{self} echo 8"), want{reply: in("0,1,2,3,4,5,6,7"), steps: 9}},
		{"sequential loop none", "loop", in("{self} echo 0"), want{reply: in(""), steps: 1}},
		{"nondeterministic replay", "nondet", in("{other} echo"), failure(abi.CodeABIViolation, "nondeterministic replay at call 0")},
	}
}

// expand replaces {self} and {other} in an input.
func expand(b []byte, self, other string) []byte {
	b = bytes.ReplaceAll(b, []byte("{self}"), []byte(self))
	return bytes.ReplaceAll(b, []byte("{other}"), []byte(other))
}

func TestBehaviours(t *testing.T) {
	f := host(t)
	for i, lang := range languages {
		self, other := module(lang), module(languages[(i+1)%len(languages)])
		t.Run(lang, func(t *testing.T) {
			for _, b := range behaviours() {
				t.Run(b.name, func(t *testing.T) {
					p := f.exec(t, self, b.kind, expand(b.input, self, other))
					b.want.check(t, p)
				})
			}
		})
	}
}

// Every step of an LP runs in a pooled instance that may have served other
// LPs in between: a component that kept request state between steps would
// show it here. Two LPs on the same modules advance one step at a time, in
// turn.
func TestNoStateBetweenSteps(t *testing.T) {
	f := host(t)
	for i, lang := range languages {
		self, other := module(lang), module(languages[(i+1)%len(languages)])
		t.Run(lang, func(t *testing.T) {
			a := lp.New("conformance", self, "seq", []byte(other+" echo a"))
			b := lp.New("conformance", self, "loop", []byte(self+" echo 3"))
			c := lp.New("conformance", self, "call", []byte(other+" call "+self+" echo c"))
			for n := 0; !a.Finished() || !b.Finished() || !c.Finished(); n++ {
				if n > 100 {
					t.Fatal("LPs did not finish in 100 rounds")
				}
				for _, p := range []*lp.Process{a, b, c} {
					if p.Finished() {
						continue
					}
					if err := f.step(t.Context(), p); err != nil {
						t.Fatal(err)
					}
				}
			}
			want{reply: []byte("a|a")}.check(t, a)
			want{reply: []byte("0,1,2")}.check(t, b)
			want{reply: []byte("c")}.check(t, c)
		})
	}
}

func TestLog(t *testing.T) {
	f := host(t)
	for _, lang := range languages {
		self := module(lang)
		t.Run(lang, func(t *testing.T) {
			for level, want := range []slog.Level{slog.LevelDebug, slog.LevelInfo, slog.LevelWarn, slog.LevelError} {
				msg := fmt.Sprintf("hello from %s at %d", lang, level)
				p := f.exec(t, self, "log", []byte(fmt.Sprintf("%d %s", level, msg)))
				reply("logged").check(t, p)
				r, ok := f.logs.find(self, msg)
				if !ok {
					t.Fatalf("no log record %q from component %s", msg, self)
				}
				if r.level != want {
					t.Fatalf("record %q at %v, want %v", msg, r.level, want)
				}
			}
		})
	}
}

// The mixed-language chain: Go calls Rust calls C calls AssemblyScript, in
// one LP, and a failure at the end travels back through all four.
func TestMixedChain(t *testing.T) {
	f := host(t)
	p := f.exec(t, chain[0], "run", []byte("hi"))
	want{reply: []byte("go(rust(c(as(hi))))")}.check(t, p)
	if len(p.Entries) != len(chain) {
		t.Fatalf("LP has %d entries, want %d", len(p.Entries), len(chain))
	}
	for i, e := range p.Entries {
		if e.Target != chain[i] || e.State != lp.StateDone {
			t.Fatalf("entry %d: %s %s, want %s done", i, e.Target, e.State, chain[i])
		}
	}
	p = f.exec(t, chain[0], "run", []byte("fail"))
	failure(502, "chain_as: asked to fail").check(t, p)
}

// Each language's module is refused when its tsubame_abi_version returns
// anything but abi.Version: the export is rewired to a function returning 2.
func TestABIVersionChecked(t *testing.T) {
	rt, err := wasmhost.New(t.Context(), wasmhost.NewConfig())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close(context.Background()) })
	for _, lang := range languages {
		t.Run(lang, func(t *testing.T) {
			wasm := readModule(t, module(lang))
			bad, err := withVersion(wasm, abi.Version+1)
			if err != nil {
				t.Fatal(err)
			}
			err = rt.Validate(t.Context(), bad)
			var me *wasmhost.ModuleError
			if !errors.As(err, &me) || me.Rule != wasmhost.RuleVersion {
				t.Fatalf("module returning version %d: Validate = %v, want a ModuleError for rule %q",
					abi.Version+1, err, wasmhost.RuleVersion)
			}
			if err := rt.Validate(t.Context(), wasm); err != nil {
				t.Fatalf("unmodified module: %v", err)
			}
		})
	}
}

// The sequential style's continuation is the same bytes in every language:
// "TSQ1" and the FNV-1a 64 fingerprint of each call made so far, as the Go
// SDK computes it.
func TestSequentialContinuationFormat(t *testing.T) {
	f := host(t)
	for i, lang := range languages {
		self, other := module(lang), module(languages[(i+1)%len(languages)])
		t.Run(lang, func(t *testing.T) {
			p := lp.New("conformance", self, "seq", []byte(other+" greet abc"))
			want := binary.LittleEndian.AppendUint64([]byte("TSQ1"), tsubame.Fingerprint(other, "greet", []byte("abc")))
			for step := 1; step <= 3; step++ {
				if err := f.step(t.Context(), p); err != nil {
					t.Fatal(err)
				}
				if step == 1 || step == 3 {
					if got := p.Root().Cont; !bytes.Equal(got, want) {
						t.Fatalf("after step %d the continuation is %x, want %x", step, got, want)
					}
					// the second call's input is the first's reply
					want = binary.LittleEndian.AppendUint64(want, tsubame.Fingerprint(other, "greet", []byte("Hello, abc")))
				}
			}
		})
	}
}
