package wasmhost

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tsubame-rt/tsubame/abi"
	"github.com/tsubame-rt/tsubame/lp"
)

func TestEchoReplies(t *testing.T) {
	rt := newRuntime(t, testConfig(nil))
	m := load(t, rt, "echo")
	for _, n := range []int{0, 5, 100 << 10, 1 << 20} {
		in := bytes.Repeat([]byte("x"), n)
		res, err := m.Step(context.Background(), "echo", lp.New("t", "echo", "any", in))
		if err != nil {
			t.Fatalf("echo %d bytes: %v", n, err)
		}
		if res.Outcome != lp.OutcomeReply || !bytes.Equal(res.Output, in) {
			t.Fatalf("echo %d bytes: outcome %v, %d bytes back", n, res.Outcome, len(res.Output))
		}
	}
}

func TestStepDoesNotModifyProcess(t *testing.T) {
	rt := newRuntime(t, testConfig(nil))
	m := load(t, rt, "relay")
	p := newLP("relay", "go", "echo/hi")
	before := fmt.Sprintf("%+v", *p)
	res, err := m.Step(context.Background(), "relay", p)
	if err != nil {
		t.Fatal(err)
	}
	if after := fmt.Sprintf("%+v", *p); after != before {
		t.Fatalf("Step modified p:\n%s\n%s", before, after)
	}
	if res.Outcome != lp.OutcomeCall || res.Target != "echo" || res.Kind != "go" || string(res.Input) != "hi" || string(res.Cont) != "relay1" {
		t.Fatalf("got %+v, want call echo/go input hi cont relay1", res)
	}
}

// TestReaders checks every reader's exact result with the probe module, on
// a first step and on a resumed one.
func TestReaders(t *testing.T) {
	rt := newRuntime(t, testConfig(nil))
	m := load(t, rt, "probe")
	ctx := context.Background()
	type probe struct {
		calls, lastCode, codeAtCalls, codeNeg, childNeg, lastLen, kindLen, inputLen, contLen, partial int32
		window                                                                                        [4]byte
		kindLen2                                                                                      int32
		kind                                                                                          string
	}
	decode := func(b []byte) probe {
		if len(b) < 48 {
			t.Fatalf("probe reply too short: %d bytes", len(b))
		}
		i := func(o int) int32 { return int32(binary.LittleEndian.Uint32(b[o:])) }
		var p probe
		p.calls, p.lastCode, p.codeAtCalls, p.codeNeg, p.childNeg = i(0), i(4), i(8), i(12), i(16)
		p.lastLen, p.kindLen, p.inputLen, p.contLen, p.partial = i(20), i(24), i(28), i(32), i(36)
		copy(p.window[:], b[40:44])
		p.kindLen2, p.kind = i(44), string(b[48:])
		return p
	}

	res, err := m.Step(ctx, "probe", newLP("probe", "look", "abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	got := decode(res.Output)
	want := probe{calls: 0, lastCode: -1, codeAtCalls: -1, codeNeg: -1, childNeg: -1, lastLen: -1,
		kindLen: 4, inputLen: 6, contLen: 0, partial: 6, window: [4]byte{'a', 'b', 'c', 0x7e}, kindLen2: 4, kind: "look"}
	if got != want {
		t.Fatalf("first step probe:\n got %+v\nwant %+v", got, want)
	}

	// Resumed after a call whose child failed with code 404.
	p := newLP("probe", "call", "xyz")
	res, err = m.Step(ctx, "probe", p)
	if err != nil || res.Outcome != lp.OutcomeCall {
		t.Fatalf("call step: %+v, %v", res, err)
	}
	if err := p.Call(res.Target, res.Kind, res.Input, res.Cont, lp.Limits{}); err != nil {
		t.Fatal(err)
	}
	if err := p.Fail(404, "not here"); err != nil {
		t.Fatal(err)
	}
	res, err = m.Step(ctx, "probe", p)
	if err != nil {
		t.Fatal(err)
	}
	got = decode(res.Output)
	want = probe{calls: 1, lastCode: 404, codeAtCalls: -1, codeNeg: -1, childNeg: -1, lastLen: int32(len("not here")),
		kindLen: 4, inputLen: 3, contLen: 1, partial: 3, window: [4]byte{'x', 'y', 'z', 0x7e}, kindLen2: 4, kind: "call"}
	if got != want {
		t.Fatalf("resumed probe:\n got %+v\nwant %+v", got, want)
	}
}

func TestContinuationRoundTrip(t *testing.T) {
	rt := newRuntime(t, testConfig(nil))
	relay, echo := load(t, rt, "relay"), load(t, rt, "echo")
	ctx := context.Background()
	p := newLP("relay", "go", "echo/payload")
	res, err := relay.Step(ctx, "relay", p)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Call(res.Target, res.Kind, res.Input, res.Cont, lp.Limits{}); err != nil {
		t.Fatal(err)
	}
	res, err = echo.Step(ctx, "echo", p)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Reply(res.Output); err != nil {
		t.Fatal(err)
	}
	// relay traps unless its continuation reads back as "relay1".
	res, err = relay.Step(ctx, "relay", p)
	if err != nil {
		t.Fatal(err)
	}
	if res.Outcome != lp.OutcomeReply || string(res.Output) != "payload" {
		t.Fatalf("resumed relay: %+v", res)
	}
}

// hostileCase is one misbehaving step and the code it must fail with.
type hostileCase struct {
	module, input string
	code          uint32
}

var hostileCases = []hostileCase{
	{"loop", "", abi.CodeTimeout},
	{"membomb", "", abi.CodeMemoryLimit},
	{"trap", "", abi.CodeTrap},
	{"bigreply", "", abi.CodeLimit},
	{"bigcont", "", abi.CodeLimit},
	{"nooutcome", "", abi.CodeABIViolation},
	{"twooutcomes", "", abi.CodeABIViolation},
	{"exit", "3", abi.CodeTrap},
	{"badptr", "r", abi.CodeABIViolation},
	{"badptr", "w", abi.CodeABIViolation},
	{"badptr", "i", abi.CodeABIViolation},
	{"badptr", "k", abi.CodeABIViolation},
	{"badptr", "c", abi.CodeABIViolation},
	{"badptr", "f", abi.CodeABIViolation},
	{"badptr", "l", abi.CodeABIViolation},
	{"badptr", "h", abi.CodeABIViolation},
	{"badptr", "n", abi.CodeABIViolation},
	{"badptr", "z", abi.CodeABIViolation},
	{"failbig", "", abi.CodeABIViolation},
}

// TestHostileSteps runs every hostile step at once, beside a good component
// that keeps working, and checks each fails with its typed error.
func TestHostileSteps(t *testing.T) {
	rt := newRuntime(t, testConfig(nil).WithMemoryLimitPages(64))
	ctx := context.Background()
	echo := load(t, rt, "echo")

	stop := make(chan struct{})
	goodErr := make(chan error, 1)
	goodSteps := 0
	go func() {
		defer close(goodErr)
		for i := 0; i < 1_000_000; i++ {
			select {
			case <-stop:
				return
			default:
			}
			in := fmt.Sprintf("good %d", i)
			res, err := echo.Step(ctx, "echo", newLP("echo", "e", in))
			if err != nil || string(res.Output) != in {
				goodErr <- fmt.Errorf("good step %d: %+v, %v", i, res, err)
				return
			}
			goodSteps++
		}
	}()

	var wg sync.WaitGroup
	for _, c := range hostileCases {
		wg.Go(func() {
			m, err := rt.Load(ctx, wasmFile(t, c.module))
			if err != nil {
				t.Errorf("load %s: %v", c.module, err)
				return
			}
			res, err := m.Step(ctx, c.module, newLP(c.module, "k", c.input))
			var se *StepError
			if !errors.As(err, &se) {
				t.Errorf("%s %q: got error %v, want a *StepError", c.module, c.input, err)
				return
			}
			if se.Code != c.code || se.Component != c.module {
				t.Errorf("%s %q: got code %d component %q (%v), want code %d", c.module, c.input, se.Code, se.Component, err, c.code)
			}
			if res.Outcome != lp.OutcomeFail || res.Code != c.code || !strings.Contains(res.Msg, c.module) {
				t.Errorf("%s %q: result %+v does not fail with code %d naming the component", c.module, c.input, res, c.code)
			}
			if msg := err.Error(); msg != strings.ToLower(msg[:1])+msg[1:] {
				t.Errorf("%s: error %q is not lowercase", c.module, msg)
			}
		})
	}
	wg.Wait()
	close(stop)
	if err := <-goodErr; err != nil {
		t.Fatal(err)
	}
	if goodSteps == 0 {
		t.Fatal("the good component made no step while the hostile ones ran")
	}
}

// The largest failure code a caller can read back as an i32 is a valid
// failure; the next one traps (TestHostileSteps).
func TestLargestFailureCode(t *testing.T) {
	rt := newRuntime(t, testConfig(nil))
	m := load(t, rt, "failbig")
	res, err := m.Step(context.Background(), "failbig", newLP("failbig", "k", "max"))
	if err != nil || res.Outcome != lp.OutcomeFail || res.Code != 1<<31-1 || res.Msg != "too big" {
		t.Fatalf("fail with 2^31-1: %+v, %v", res, err)
	}
}

func TestTruncate(t *testing.T) {
	for _, c := range []struct {
		in   string
		n    int
		want string
	}{
		{"hello", 10, "hello"},
		{"hello", 3, "hel"},
		{"héllo", 2, "h"}, // é is bytes 1-2
		{"a€b", 3, "a"},   // € is bytes 1-3
		{"a€b", 4, "a€"},  // a cut right after it keeps it
		{"😀😀", 7, "😀"},    // a 4-byte rune cut after its third byte
		{"\xff\xfeok", 10, "\ufffd\ufffdok"},
		{"ab" + strings.Repeat("\x80", 10), 6, "ab\ufffd\ufffd\ufffd\ufffd"}, // no rune start near the cut
	} {
		if got := truncate(c.in, c.n); got != c.want {
			t.Errorf("truncate(%q, %d) = %q, want %q", c.in, c.n, got, c.want)
		}
		if got := truncate([]byte(c.in), c.n); got != c.want {
			t.Errorf("truncate([]byte(%q), %d) = %q, want %q", c.in, c.n, got, c.want)
		}
	}
	// A guest's fail or log message is cut in its memory before it is
	// copied: a 4 MiB range costs the 4 KiB kept, not 4 MiB.
	big := bytes.Repeat([]byte("x"), 4<<20)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range 50 {
		if s := truncate(big, 4096); len(s) != 4096 {
			t.Fatalf("kept %d bytes", len(s))
		}
	}
	runtime.ReadMemStats(&after)
	if perCall := (after.TotalAlloc - before.TotalAlloc) / 50; perCall > 512<<10 {
		t.Errorf("truncating 4 MiB to 4 KiB allocated %d bytes per call", perCall)
	}
}

func TestExitZeroWithOutcome(t *testing.T) {
	rt := newRuntime(t, testConfig(nil))
	m := load(t, rt, "exit")
	for i := 0; i < 3; i++ { // proc_exit closes the instance; the pool must replace it
		res, err := m.Step(context.Background(), "exit", newLP("exit", "k", "0"))
		if err != nil || res.Outcome != lp.OutcomeReply || string(res.Output) != "bye" {
			t.Fatalf("step %d: %+v, %v", i, res, err)
		}
	}
}

// TestPoolNotPoisoned: with one instance, a step that times out, traps or
// breaks the ABI is followed by steps that succeed.
func TestPoolNotPoisoned(t *testing.T) {
	rt := newRuntime(t, testConfig(nil).WithMaxInstances(1).WithStepTimeout(100*time.Millisecond))
	m := load(t, rt, "flaky")
	ctx := context.Background()
	for _, bad := range []struct {
		input string
		code  uint32
	}{{"loop", abi.CodeTimeout}, {"trap", abi.CodeTrap}, {"ptr", abi.CodeABIViolation}} {
		_, err := m.Step(ctx, "flaky", newLP("flaky", "k", bad.input))
		var se *StepError
		if !errors.As(err, &se) || se.Code != bad.code {
			t.Fatalf("%s: got %v, want code %d", bad.input, err, bad.code)
		}
		for i := 0; i < 3; i++ {
			res, err := m.Step(ctx, "flaky", newLP("flaky", "k", "fine"))
			if err != nil || string(res.Output) != "fine" {
				t.Fatalf("after %s, step %d: %+v, %v", bad.input, i, res, err)
			}
		}
	}
}

func TestCallerDeadlineAndCancel(t *testing.T) {
	rt := newRuntime(t, testConfig(nil).WithStepTimeout(10*time.Second))
	m := load(t, rt, "loop")

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := m.Step(ctx, "loop", newLP("loop", "k", ""))
	var se *StepError
	// Usually the step starts and the deadline stops it; on a loaded
	// machine the 50 ms may pass before it starts. Both are timeouts.
	if !errors.As(err, &se) || se.Code != abi.CodeTimeout ||
		!strings.Contains(err.Error(), "caller's deadline") && !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("caller deadline: got %v, want a timeout from the caller's deadline", err)
	}

	ctx, cancel = context.WithCancel(context.Background())
	go func() {
		// Cancel once the step is surely running: poll until an instance is busy.
		for i := 0; i < 10000 && len(m.slots) == 0; i++ {
			time.Sleep(time.Millisecond)
		}
		cancel()
	}()
	_, err = m.Step(ctx, "loop", newLP("loop", "k", ""))
	if !errors.As(err, &se) || se.Code != abi.CodeCanceled {
		t.Fatalf("canceled: got %v, want code %d", err, abi.CodeCanceled)
	}
	_, err = m.Step(ctx, "loop", newLP("loop", "k", ""))
	if !errors.As(err, &se) || se.Code != abi.CodeCanceled || !strings.Contains(err.Error(), "not started") {
		t.Fatalf("already canceled: got %v", err)
	}
}

func TestLoadRules(t *testing.T) {
	rt := newRuntime(t, testConfig(nil))
	ctx := context.Background()
	echo := wasmFile(t, "echo")
	cases := []struct {
		name string
		wasm []byte
		rule string
		msg  string
	}{
		{"empty", nil, RuleCompile, "magic"},
		{"text", []byte("hello, world"), RuleCompile, "magic"},
		{"truncated", echo[:len(echo)/2], RuleCompile, ""},
		{"garbage after magic", append([]byte("\x00asm\x01\x00\x00\x00"), bytes.Repeat([]byte{0xff}, 64)...), RuleCompile, ""},
		{"badimport", wasmFile(t, "badimport"), RuleImports, "env.something"},
		{"badhostfn", wasmFile(t, "badhostfn"), RuleImports, "tsubame.exec"},
		{"badhostsig", wasmFile(t, "badhostsig"), RuleImports, "tsubame.reply"},
		{"badversion", wasmFile(t, "badversion"), RuleVersion, "returned 2"},
		{"noexport", wasmFile(t, "noexport"), RuleExports, abi.ExportStep},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for op, f := range map[string]func() error{
				"Load":     func() error { _, err := rt.Load(ctx, c.wasm); return err },
				"Validate": func() error { return rt.Validate(ctx, c.wasm) },
			} {
				err := f()
				var me *ModuleError
				if !errors.As(err, &me) || me.Rule != c.rule || !strings.Contains(err.Error(), c.msg) {
					t.Errorf("%s: got %v, want rule %q mentioning %q", op, err, c.rule, c.msg)
				}
			}
			if rt.Module(sha256.Sum256(c.wasm)) != nil {
				t.Errorf("refused module is loaded")
			}
		})
	}
}

func TestModuleMemoryOverLimitRefused(t *testing.T) {
	rt := newRuntime(t, testConfig(nil).WithMemoryLimitPages(16))
	_, err := rt.Load(context.Background(), wasmFile(t, "bigreply")) // declares 17 pages
	var me *ModuleError
	if !errors.As(err, &me) || me.Rule != RuleMemory || !strings.Contains(err.Error(), "17 pages") {
		t.Fatalf("got %v, want rule %q", err, RuleMemory)
	}
}

func TestLoadIdempotentAndDrop(t *testing.T) {
	rt := newRuntime(t, testConfig(nil))
	ctx := context.Background()
	wasm := wasmFile(t, "echo")
	var wg sync.WaitGroup
	mods := make([]*Module, 4)
	for i := range mods {
		wg.Go(func() {
			m, err := rt.Load(ctx, wasm)
			if err != nil {
				t.Error(err)
			}
			mods[i] = m
		})
	}
	wg.Wait()
	for _, m := range mods[1:] {
		if m != mods[0] {
			t.Fatal("concurrent loads of the same bytes gave different modules")
		}
	}
	m := mods[0]
	if m.Hash() != sha256.Sum256(wasm) || m.Size() != len(wasm) || rt.Module(m.Hash()) != m {
		t.Fatalf("hash/size/lookup mismatch")
	}
	if err := rt.Validate(ctx, wasm); err != nil {
		t.Fatalf("validate a loaded module: %v", err)
	}
	if err := rt.Validate(ctx, wasmFile(t, "relay")); err != nil || rt.Module(sha256.Sum256(wasmFile(t, "relay"))) != nil {
		t.Fatalf("validate relay: %v (or it was kept)", err)
	}
	if _, err := m.Step(ctx, "echo", newLP("echo", "k", "x")); err != nil {
		t.Fatal(err)
	}
	if err := rt.Drop(ctx, m.Hash()); err != nil {
		t.Fatal(err)
	}
	if rt.Module(m.Hash()) != nil {
		t.Fatal("dropped module still loaded")
	}
	if _, err := m.Step(ctx, "echo", newLP("echo", "k", "x")); !errors.Is(err, ErrClosed) {
		t.Fatalf("step on a dropped module: got %v, want ErrClosed", err)
	}
	// Loading again after a drop gives a fresh, working module.
	m2, err := rt.Load(ctx, wasm)
	if err != nil || m2 == m {
		t.Fatalf("reload: %v (same module: %v)", err, m2 == m)
	}
	if res, err := m2.Step(ctx, "echo", newLP("echo", "k", "again")); err != nil || string(res.Output) != "again" {
		t.Fatalf("step after reload: %+v, %v", res, err)
	}
}

func TestStepOnFinishedProcess(t *testing.T) {
	rt := newRuntime(t, testConfig(nil))
	m := load(t, rt, "echo")
	p := newLP("echo", "k", "x")
	_ = p.Reply(nil)
	if _, err := m.Step(context.Background(), "echo", p); !errors.Is(err, lp.ErrFinished) {
		t.Fatalf("got %v, want lp.ErrFinished", err)
	}
}

// TestPoolConcurrency runs many steps at once on a small pool; every reply
// must be its own input (instances are never shared), and the pool never
// holds more instances than its cap.
func TestPoolConcurrency(t *testing.T) {
	rt := newRuntime(t, testConfig(nil).WithMaxInstances(2))
	m := load(t, rt, "echo")
	ctx := context.Background()
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Go(func() {
			for i := 0; i < 200; i++ {
				in := fmt.Sprintf("g%d-i%d-%s", g, i, strings.Repeat("z", i))
				res, err := m.Step(ctx, "echo", newLP("echo", "k", in))
				if err != nil || string(res.Output) != in {
					t.Errorf("g%d i%d: %+v, %v", g, i, res, err)
					return
				}
			}
		})
	}
	wg.Wait()
	m.mu.Lock()
	n := len(m.free)
	m.mu.Unlock()
	if n < 1 || n > 2 {
		t.Fatalf("pool holds %d idle instances, want 1 or 2", n)
	}
}

// TestRecycle: an instance is retired after the configured number of steps
// and replaced by a fresh one; stdout.wasm traps if its _initialize ran more
// than once in the same instance.
func TestRecycle(t *testing.T) {
	logs := &logBuf{}
	rt := newRuntime(t, testConfig(logs).WithMaxInstances(1).WithRecycle(3, 0))
	m := load(t, rt, "stdout")
	ctx := context.Background()
	seen := map[*instance]int{}
	for i := 0; i < 10; i++ {
		res, err := m.Step(ctx, "stdout", newLP("stdout", "k", ""))
		if err != nil || string(res.Output) != "ok" {
			t.Fatalf("step %d: %+v, %v", i, res, err)
		}
		// Wait for a background replacement to land before looking.
		var in *instance
		for j := 0; j < 5000 && in == nil; j++ {
			m.mu.Lock()
			if len(m.free) == 1 {
				in = m.free[0]
			}
			m.mu.Unlock()
			if in == nil {
				time.Sleep(time.Millisecond)
			}
		}
		if in == nil {
			t.Fatal("no idle instance after a step")
		}
		seen[in]++
	}
	if len(seen) < 3 {
		t.Fatalf("10 steps with recycling every 3 used %d instances, want at least 3", len(seen))
	}
	if got := strings.Count(logs.String(), "hello from wasi"); got != 10 {
		t.Fatalf("guest stdout logged %d times, want 10:\n%s", got, logs.String())
	}
	if !strings.Contains(logs.String(), "component=stdout") || !strings.Contains(logs.String(), "stream=stdout") {
		t.Fatalf("stdout lines are not tagged with component and stream:\n%s", logs.String())
	}
}

func TestRecycleOnMemory(t *testing.T) {
	rt := newRuntime(t, testConfig(nil).WithMaxInstances(1).WithRecycle(0, 4))
	m := load(t, rt, "echo")
	ctx := context.Background()
	first := m.free[0]
	big := bytes.Repeat([]byte("m"), 5*65536) // echo grows to 6 pages, over 4
	if _, err := m.Step(ctx, "echo", lp.New("t", "echo", "k", big)); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5000; i++ {
		m.mu.Lock()
		n := len(m.free)
		m.mu.Unlock()
		if n == 1 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.free) != 1 || m.free[0] == first {
		t.Fatalf("instance over the memory threshold was kept")
	}
}

// A memory threshold of 65536 pages (all of wasm32: 2^32 bytes) keeps
// instances; it must not wrap around to zero and retire every one.
func TestRecycleThresholdAllMemory(t *testing.T) {
	rt := newRuntime(t, testConfig(nil).WithMaxInstances(1).WithRecycle(0, 65536))
	m := load(t, rt, "echo")
	first := m.free[0]
	for i := range 3 {
		if _, err := m.Step(context.Background(), "echo", newLP("echo", "k", "x")); err != nil {
			t.Fatal(err)
		}
		m.mu.Lock()
		kept := len(m.free) == 1 && m.free[0] == first
		m.mu.Unlock()
		if !kept {
			t.Fatalf("step %d retired the instance", i)
		}
	}
}

// A guest's output line longer than maxLine is logged in pieces, none of
// them cutting a rune, and the writer never holds more than a piece.
func TestLogWriterPieces(t *testing.T) {
	var out bytes.Buffer
	// Limits far above this test's output: logbudget_test.go tests them.
	rt := &Runtime{cfg: Config{logger: slog.New(slog.NewJSONHandler(&out, nil))}}
	rt.logs.limits = LogLimits{PerStep: 4 << 20, PerSecond: 4 << 20, Burst: 4 << 20}
	w := &logWriter{in: &instance{m: &Module{rt: rt}},
		stream: "stdout", level: slog.LevelInfo}
	messages := func() []string {
		var got []string
		for line := range strings.Lines(out.String()) {
			var r struct{ Msg string }
			if err := json.Unmarshal([]byte(line), &r); err != nil {
				t.Fatal(err)
			}
			got = append(got, r.Msg)
		}
		out.Reset()
		return got
	}
	long := strings.Repeat("x", 10000)
	for _, s := range []string{"short\n" + long[:3000], long[3000:] + "\n", strings.Repeat("a", maxLine-1) + "€\n", "tail"} {
		if n, err := w.Write([]byte(s)); n != len(s) || err != nil {
			t.Fatalf("Write: %d, %v", n, err)
		}
	}
	w.flush() // as when the instance closes
	want := []string{"short", long[:4096], long[4096:8192], long[8192:], strings.Repeat("a", maxLine-1), "€", "tail"}
	if got := messages(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("logged %d records %.80q..., want %d", len(got), got, len(want))
	}
	w.Write(bytes.Repeat([]byte("y"), 1<<20))
	if n := len(messages()); n != 256 || cap(w.buf) > 2*maxLine {
		t.Errorf("1 MiB without a newline: %d records, buffer capacity %d", n, cap(w.buf))
	}
}

func TestGuestLog(t *testing.T) {
	logs := &logBuf{}
	rt := newRuntime(t, testConfig(logs))
	relay, echo := load(t, rt, "relay"), load(t, rt, "echo")
	ctx := context.Background()
	p := newLP("relay", "go", "echo/x")
	res, _ := relay.Step(ctx, "relay", p)
	_ = p.Call(res.Target, res.Kind, res.Input, res.Cont, lp.Limits{})
	res, _ = echo.Step(ctx, "echo", p)
	_ = p.Reply(res.Output)
	if _, err := relay.Step(ctx, "relay", p); err != nil {
		t.Fatal(err)
	}
	want := "level=DEBUG msg=resumed component=relay module=" + relay.Hash().Short() + " lp=" + p.ID.String() + " entry=0"
	if !strings.Contains(logs.String(), want) {
		t.Fatalf("log lacks %q:\n%s", want, logs.String())
	}
}

func TestHostFunctionOutsideStep(t *testing.T) {
	rt := newRuntime(t, testConfig(nil))
	m := load(t, rt, "echo")
	in := m.free[0]
	// Calling tsubame_step directly (not through Step) must trap cleanly.
	err := in.stepFn.CallWithStack(context.Background(), nil)
	if err == nil || !strings.Contains(err.Error(), "outside tsubame_step") {
		t.Fatalf("got %v", err)
	}
}

// TestCloseDuringStep: closing the runtime stops a running step, which
// reports ErrClosed (it did not fail on its own), and Close returns.
func TestCloseDuringStep(t *testing.T) {
	rt, err := New(context.Background(), testConfig(nil).WithStepTimeout(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	m := load(t, rt, "loop")
	done := make(chan error, 1)
	go func() {
		_, err := m.Step(context.Background(), "loop", newLP("loop", "k", ""))
		done <- err
	}()
	for i := 0; i < 10000 && len(m.slots) == 0; i++ {
		time.Sleep(time.Millisecond)
	}
	if err := rt.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, ErrClosed) {
			t.Fatalf("got %v, want ErrClosed", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the step did not stop when the runtime closed")
	}
}

// TestCacheDir: compiled code goes to the cache directory, and a second
// runtime on the same directory loads and runs the module from it.
func TestCacheDir(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	for i := 0; i < 2; i++ {
		rt := newRuntime(t, testConfig(nil).WithCacheDir(dir))
		m := load(t, rt, "echo")
		if res, err := m.Step(ctx, "echo", newLP("echo", "k", "cached")); err != nil || string(res.Output) != "cached" {
			t.Fatalf("run %d: %+v, %v", i, res, err)
		}
		if err := rt.Close(ctx); err != nil {
			t.Fatal(err)
		}
	}
	var files int
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, _ error) error {
		if d != nil && !d.IsDir() {
			files++
		}
		return nil
	})
	if files == 0 {
		t.Fatal("nothing was written to the cache directory")
	}
}

// A compiled-cache directory torn by a crash (a truncated or empty entry, a
// temporary file of an interrupted write) does not
// keep a module from loading: the runtime removes the leftovers, recompiles
// and says so.
func TestCacheDirTorn(t *testing.T) {
	for _, tear := range []struct {
		name string
		f    func(path string, b []byte) []byte
	}{
		{"truncated", func(_ string, b []byte) []byte { return b[:len(b)/2] }},
		{"empty", func(string, []byte) []byte { return nil }},
	} {
		t.Run(tear.name, func(t *testing.T) {
			dir := t.TempDir()
			ctx := context.Background()
			rt := newRuntime(t, testConfig(nil).WithCacheDir(dir))
			load(t, rt, "echo")
			if err := rt.Close(ctx); err != nil {
				t.Fatal(err)
			}
			var entries []string
			_ = filepath.WalkDir(dir, func(path string, d fs.DirEntry, _ error) error {
				if d != nil && !d.IsDir() {
					entries = append(entries, path)
				}
				return nil
			})
			if len(entries) == 0 {
				t.Fatal("nothing was written to the cache directory")
			}
			for _, path := range entries {
				b, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, tear.f(path, b), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			leftover := filepath.Join(filepath.Dir(entries[0]), "abc.123.tmp")
			if err := os.WriteFile(leftover, make([]byte, 4096), 0o600); err != nil {
				t.Fatal(err)
			}
			logs := &logBuf{}
			rt = newRuntime(t, testConfig(logs).WithCacheDir(dir))
			if _, err := os.Stat(leftover); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("leftover temporary file still there: %v", err)
			}
			m := load(t, rt, "echo")
			if res, err := m.Step(ctx, "echo", newLP("echo", "k", "again")); err != nil || string(res.Output) != "again" {
				t.Fatalf("step after repair: %+v, %v", res, err)
			}
			if !strings.Contains(logs.String(), "cache entry unreadable") {
				t.Errorf("the repair was not logged:\n%s", logs.String())
			}
		})
	}
}
