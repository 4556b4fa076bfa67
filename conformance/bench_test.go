package conformance

import (
	"context"
	"testing"

	"github.com/tsubame-rt/tsubame/lp"
	"github.com/tsubame-rt/tsubame/node/engine"
	"github.com/tsubame-rt/tsubame/wasmhost"
)

// greets is the same greet component in every language, so the figures
// compare languages (toolchain + SDK), not work. greet_wat, the hand-written
// one, is the baseline.
var greets = []struct{ lang, module string }{
	{"wat", "greet_wat"},
	{"c", "greet_c"},
	{"rust", "greet_rust"},
	{"as", "greet_as"},
	{"go", "greet"},
}

// BenchmarkGreet is one LP with one step ("greet" "world") through
// node/engine on a warm module: the per-step cost of each language's module
// and SDK. Reports the module size too.
func BenchmarkGreet(b *testing.B) {
	ctx := context.Background()
	rt, err := wasmhost.New(ctx, wasmhost.NewConfig())
	if err != nil {
		b.Fatal(err)
	}
	defer rt.Close(ctx)
	for _, g := range greets {
		b.Run(g.lang, func(b *testing.B) {
			wasm := readModule(b, g.module)
			m, err := rt.Load(ctx, wasm)
			if err != nil {
				b.Fatal(err)
			}
			eng := engine.New(rt, engine.Options{Node: "bench"})
			eng.Install("greet", m)
			input := []byte("world")
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				p := lp.New("bench", "greet", "greet", input)
				if err := eng.Run(ctx, p); err != nil {
					b.Fatal(err)
				}
				if r := p.Root(); r.State != lp.StateDone || string(r.Output) != "Hello, world" {
					b.Fatalf("%s: %s %q %q", g.module, r.State, r.Output, r.ErrMsg)
				}
			}
			b.ReportMetric(float64(len(wasm)), "module-bytes")
		})
	}
}

// BenchmarkLoad is wasmhost's Load of each greet (validate, compile, check
// the ABI version) on a fresh runtime, so no compilation cache helps.
func BenchmarkLoad(b *testing.B) {
	ctx := context.Background()
	for _, g := range greets {
		b.Run(g.lang, func(b *testing.B) {
			wasm := readModule(b, g.module)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				rt, err := wasmhost.New(ctx, wasmhost.NewConfig())
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				if _, err := rt.Load(ctx, wasm); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				rt.Close(ctx)
				b.StartTimer()
			}
			b.ReportMetric(float64(len(wasm)), "module-bytes")
		})
	}
}
