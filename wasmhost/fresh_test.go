package wasmhost

import (
	"context"
	"encoding/binary"
	"testing"

	"github.com/tsubame-rt/tsubame/lp"
)

// stepLeftover runs one step of leftover.wasm and returns what it saw of the
// instance's past: its step count and the previous step's input.
func stepLeftover(t testing.TB, m *Module, component, input string) (uint32, string) {
	t.Helper()
	res, err := m.Step(context.Background(), component, newLP(component, "any", input))
	if err != nil || res.Outcome != lp.OutcomeReply || len(res.Output) < 4 {
		t.Fatalf("step: %+v %v", res, err)
	}
	return binary.LittleEndian.Uint32(res.Output), string(res.Output[4:])
}

// ABI.md §2: a pooled instance carries its globals and memory from one step
// to the next, across LPs: another request's input stays readable.
func TestInstanceReuseCarriesState(t *testing.T) {
	rt := newRuntime(t, testConfig(nil).WithMaxInstances(1))
	m := load(t, rt, "leftover")
	if n, prev := stepLeftover(t, m, "leftover", "secret of LP 1"); n != 0 || prev != "" {
		t.Fatalf("first step saw %d, %q", n, prev)
	}
	if n, prev := stepLeftover(t, m, "leftover", "LP 2"); n != 1 || prev != "secret of LP 1" {
		t.Fatalf("second step saw %d, %q: want the instance's state carried over", n, prev)
	}
}

// WithFreshInstances: every step of the named component starts from the
// module as declared; other components keep reusing instances.
func TestFreshInstances(t *testing.T) {
	rt := newRuntime(t, testConfig(nil).WithMaxInstances(1).WithFreshInstances("clean"))
	m := load(t, rt, "leftover")
	for i := range 5 {
		if n, prev := stepLeftover(t, m, "clean", "secret"); n != 0 || prev != "" {
			t.Fatalf("step %d of a fresh component saw %d steps and %q", i, n, prev)
		}
	}
	stepLeftover(t, m, "reused", "a")
	if n, prev := stepLeftover(t, m, "reused", "b"); n == 0 || prev != "a" {
		t.Fatalf("a component not named reused nothing: %d %q", n, prev)
	}
}

// BenchmarkStepFresh is BenchmarkStep with a fresh instance for every step:
// the cost of WithFreshInstances for a small module (echo.wasm). The Go
// guest's cost is BenchmarkStepFreshGo.
func BenchmarkStepFresh(b *testing.B) {
	benchFresh(b, "echo", "echo", true)
}

func BenchmarkStepReusedGo(b *testing.B) { benchFresh(b, "greet", "greet", false) }

func BenchmarkStepFreshGo(b *testing.B) { benchFresh(b, "greet", "greet", true) }

func benchFresh(b *testing.B, module, kind string, fresh bool) {
	c := testConfig(nil)
	if fresh {
		c = c.WithFreshInstances(module)
	}
	rt := newRuntime(b, c)
	m := load(b, rt, module)
	p := lp.New("bench", module, kind, benchInput)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		res, err := m.Step(ctx, module, p)
		if err != nil || res.Outcome != lp.OutcomeReply {
			b.Fatalf("%+v %v", res, err)
		}
	}
}
