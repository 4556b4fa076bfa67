package wasmhost

import (
	"context"
	"errors"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/tsubame-rt/tsubame/abi"
	"github.com/tsubame-rt/tsubame/lp"
)

// Go guests (GOOS=wasip1, -buildmode=c-shared, built from components-src/go
// with the SDK in abi/go): a reactor with _initialize and WASI imports.

// goRT is one runtime shared by the Go guest tests: compiling a 2 MB Go
// module takes half a second (ten times that under -race), once is enough.
var goRT struct {
	once sync.Once
	rt   *Runtime
	logs logBuf
	err  error
}

func goRuntime(t *testing.T) (*Runtime, *logBuf) {
	goRT.once.Do(func() { goRT.rt, goRT.err = New(context.Background(), testConfig(&goRT.logs)) })
	if goRT.err != nil {
		t.Fatal(goRT.err)
	}
	return goRT.rt, &goRT.logs
}

func TestMain(m *testing.M) {
	code := m.Run()
	if goRT.rt != nil {
		_ = goRT.rt.Close(context.Background())
	}
	os.Exit(code)
}

func TestGoGuestCallAndResume(t *testing.T) {
	rt, _ := goRuntime(t)
	hello, greet := load(t, rt, "hello"), load(t, rt, "greet")
	ctx := context.Background()
	p := newLP("hello", "say", "world")
	res, err := hello.Step(ctx, "hello", p)
	if err != nil || res.Outcome != lp.OutcomeCall || res.Target != "greet" || res.Kind != "greet" || string(res.Input) != "world" {
		t.Fatalf("first step: %+v, %v", res, err)
	}
	_ = p.Call(res.Target, res.Kind, res.Input, res.Cont, lp.Limits{})
	res, err = greet.Step(ctx, "greet", p)
	if err != nil || string(res.Output) != "Hello, world" {
		t.Fatalf("greet: %+v, %v", res, err)
	}
	_ = p.Reply(res.Output)
	res, err = hello.Step(ctx, "hello", p)
	if err != nil || string(res.Output) != "Hello, world!" {
		t.Fatalf("resume: %+v, %v", res, err)
	}
}

// TestGoGuestOutOfMemory: a Go guest whose allocation cannot be satisfied
// aborts (unreachable) far below the limit, after memory.grow was refused:
// the host reports that as the memory limit, not as a plain trap.
func TestGoGuestOutOfMemory(t *testing.T) {
	rt, _ := goRuntime(t)
	m := load(t, rt, "memgrow")
	_, err := m.Step(context.Background(), "memgrow", newLP("memgrow", "leak", "67108864"))
	var se *StepError
	if !errors.As(err, &se) || se.Code != abi.CodeMemoryLimit {
		t.Fatalf("got %v, want code %d", err, abi.CodeMemoryLimit)
	}
	res, err := m.Step(context.Background(), "memgrow", newLP("memgrow", "alloc", "1000"))
	if err != nil || string(res.Output) != "1000" {
		t.Fatalf("step after the out-of-memory one: %+v, %v", res, err)
	}
}

func TestGoGuestPanicLogged(t *testing.T) {
	rt, logs := goRuntime(t)
	m := load(t, rt, "memgrow")
	_, err := m.Step(context.Background(), "memgrow", newLP("memgrow", "panic", ""))
	var se *StepError
	if !errors.As(err, &se) || se.Code != abi.CodeTrap {
		t.Fatalf("got %v, want code %d", err, abi.CodeTrap)
	}
	if l := logs.String(); !strings.Contains(l, `level=WARN msg="panic: memgrow: asked to panic" component=memgrow`) ||
		!strings.Contains(l, "stream=stderr") {
		t.Fatalf("the guest's panic is not in the log:\n%s", l)
	}
}
