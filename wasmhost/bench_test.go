package wasmhost

import (
	"context"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/tsubame-rt/tsubame/lp"
)

// benchInput is what both benchmarks feed echo.wasm.
var benchInput = []byte("0123456789abcdef")

// BenchmarkStep is one step of echo.wasm (read 16 bytes of input, reply
// with them) through Module.Step with a warm pooled instance: pool, deadline,
// host functions, the copy of the reply out of the guest.
func BenchmarkStep(b *testing.B) {
	rt := newRuntime(b, testConfig(nil))
	m := load(b, rt, "echo")
	p := lp.New("bench", "echo", "echo", benchInput)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		res, err := m.Step(ctx, "echo", p)
		if err != nil || len(res.Output) != len(benchInput) {
			b.Fatalf("%+v %v", res, err)
		}
	}
}

// BenchmarkBareCall is the baseline for BenchmarkStep: the same export of
// the same module called directly on a wazero runtime with the same
// configuration (compiler, close on context done, memory limit), with
// minimal host functions that do the same memory copies but no checks,
// no pool and no deadline. close=off is the same without close on context
// done, the price of keeping a spinning guest killable: wazero then starts
// no watcher goroutine per call and compiles no check into loops.
func BenchmarkBareCall(b *testing.B) {
	b.Run("close=on", func(b *testing.B) { benchBareCall(b, true) })
	b.Run("close=off", func(b *testing.B) { benchBareCall(b, false) })
}

func benchBareCall(b *testing.B, closeOnDone bool) {
	ctx := context.Background()
	cache := wazero.NewCompilationCache()
	defer cache.Close(ctx)
	cfg := defaultConfig.resolved()
	wz := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfig().
		WithCloseOnContextDone(closeOnDone).WithMemoryLimitPages(cfg.memoryLimitPages).WithCompilationCache(cache))
	defer wz.Close(ctx)
	var out []byte
	_, err := wz.NewHostModuleBuilder("tsubame").
		NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(func(_ context.Context, mod api.Module, stack []uint64) {
		if n := api.DecodeU32(stack[1]); n > 0 {
			dst, _ := mod.Memory().Read(api.DecodeU32(stack[0]), n)
			copy(dst, benchInput)
		}
		stack[0] = api.EncodeU32(uint32(len(benchInput)))
	}), i32s(2), i32s(1)).Export("input").
		NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(func(_ context.Context, mod api.Module, stack []uint64) {
		src, _ := mod.Memory().Read(api.DecodeU32(stack[0]), api.DecodeU32(stack[1]))
		out = append(out[:0], src...)
	}), i32s(2), i32s(0)).Export("reply").
		Instantiate(ctx)
	if err != nil {
		b.Fatal(err)
	}
	compiled, err := wz.CompileModule(ctx, wasmFile(b, "echo"))
	if err != nil {
		b.Fatal(err)
	}
	mod, err := wz.InstantiateModule(ctx, compiled, wazero.NewModuleConfig().WithName(""))
	if err != nil {
		b.Fatal(err)
	}
	step := mod.ExportedFunction("tsubame_step")
	b.ReportAllocs()
	for b.Loop() {
		if err := step.CallWithStack(ctx, nil); err != nil || len(out) != len(benchInput) {
			b.Fatal(err)
		}
	}
}
