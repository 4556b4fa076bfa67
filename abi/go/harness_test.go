//go:build !wasip1

package tsubame_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/tsubame-rt/tsubame/abi"
	"github.com/tsubame-rt/tsubame/lp"
)

// harness is the smallest host that runs the committed Go components: one
// instance per component, the host functions of ABI.md §3 over an lp.Process,
// steps run in a loop. It is the SDK's test bench, not a model of wasmhost:
// no pools, no deadlines, and a trap just discards the instance.
type harness struct {
	tb      testing.TB
	ctx     context.Context
	r       wazero.Runtime
	modules map[string]wazero.CompiledModule
	inst    map[string]*instance
	stderr  bytes.Buffer

	// The step in progress.
	p    *lp.Process
	kids []int32
	out  outcome
}

type instance struct {
	mod  api.Module
	step api.Function
}

type outcome struct {
	op           lp.Outcome // 0: none yet
	code         uint32
	data, cont   []byte
	target, kind string
}

// cache keeps compiled modules across the package's tests: compiling a Go
// module is the slow part (about half a second).
var cache = wazero.NewCompilationCache()

// newHarness loads the named modules (paths to .wasm files, the component
// name being the base name) with a memory limit of pages.
func newHarness(tb testing.TB, pages uint32, paths ...string) *harness {
	tb.Helper()
	h := &harness{tb: tb, ctx: context.Background(), modules: map[string]wazero.CompiledModule{}, inst: map[string]*instance{}}
	h.r = wazero.NewRuntimeWithConfig(h.ctx, wazero.NewRuntimeConfig().
		WithCompilationCache(cache).WithMemoryLimitPages(pages).WithCloseOnContextDone(true))
	tb.Cleanup(func() { h.r.Close(h.ctx) })
	wasi_snapshot_preview1.MustInstantiate(h.ctx, h.r)
	h.hostModule()
	for _, p := range paths {
		bin, err := os.ReadFile(p)
		if err != nil {
			tb.Fatal(err)
		}
		cm, err := h.r.CompileModule(h.ctx, bin)
		if err != nil {
			tb.Fatalf("compile %s: %v", p, err)
		}
		h.modules[trimExt(filepath.Base(p))] = cm
	}
	return h
}

func trimExt(s string) string { return s[:len(s)-len(filepath.Ext(s))] }

func testdata(names ...string) []string {
	var out []string
	for _, n := range names {
		out = append(out, filepath.Join("..", "..", "testdata", n+".wasm"))
	}
	return out
}

func (h *harness) instance(name string) (*instance, error) {
	if in, ok := h.inst[name]; ok {
		return in, nil
	}
	cm, ok := h.modules[name]
	if !ok {
		return nil, errors.New("no component " + name)
	}
	mod, err := h.r.InstantiateModule(h.ctx, cm, wazero.NewModuleConfig().WithName("").
		WithStartFunctions("_initialize").WithStderr(&h.stderr).WithStdout(&h.stderr))
	if err != nil {
		return nil, err
	}
	if v, err := mod.ExportedFunction(abi.ExportVersion).Call(h.ctx); err != nil || v[0] != abi.Version {
		return nil, fmt.Errorf("%s: abi version %v, %v", name, v, err)
	}
	in := &instance{mod: mod, step: mod.ExportedFunction(abi.ExportStep)}
	h.inst[name] = in
	return in, nil
}

// run runs a new LP to its end and returns the root entry.
func (h *harness) run(target, kind string, input []byte) lp.Entry {
	h.tb.Helper()
	h.p = lp.New("test", target, kind, input)
	for i := 0; !h.p.Finished(); i++ {
		if i > 10*lp.DefaultLimits.MaxEntries {
			h.tb.Fatalf("%s/%s: no result after %d steps", target, kind, i)
		}
		h.step()
	}
	return *h.p.Root()
}

// step runs the active entry for one step and applies its outcome.
func (h *harness) step() {
	e := h.p.ActiveEntry()
	in, err := h.instance(e.Target)
	if err != nil {
		h.p.Fail(abi.CodeNoComponent, err.Error())
		return
	}
	h.kids = h.p.Children(h.p.Active)
	h.out = outcome{}
	if _, err := in.step.Call(h.ctx); err != nil {
		in.mod.Close(h.ctx)
		delete(h.inst, e.Target)
		h.p.Fail(abi.CodeTrap, err.Error())
		return
	}
	switch h.out.op {
	case lp.OutcomeReply:
		err = h.p.Reply(h.out.data)
	case lp.OutcomeFail:
		err = h.p.Fail(h.out.code, string(h.out.data))
	case lp.OutcomeCall:
		err = h.p.Call(h.out.target, h.out.kind, h.out.data, h.out.cont, lp.DefaultLimits)
	default:
		err = h.p.Fail(abi.CodeABIViolation, "no outcome")
	}
	if err != nil {
		h.p.Fail(abi.CodeLimit, err.Error())
	}
}

func (h *harness) child(arg uint64) (*lp.Entry, bool) {
	i := int32(uint32(arg)) // an i32 argument: the upper bits mean nothing
	if i < 0 || int(i) >= len(h.kids) {
		return nil, false
	}
	return &h.p.Entries[h.kids[i]], true
}

// hostModule instantiates the "tsubame" host functions.
func (h *harness) hostModule() {
	i32 := func(n int) []api.ValueType { return bytes.Repeat([]api.ValueType{api.ValueTypeI32}, n) }
	b := h.r.NewHostModuleBuilder(abi.Module)
	fn := func(name string, params, results int, f func(m api.Module, s []uint64)) {
		b.NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(func(_ context.Context, m api.Module, s []uint64) { f(m, s) }),
			i32(params), i32(results)).Export(name)
	}
	reader := func(name string, v func() []byte) {
		fn(name, 2, 1, func(m api.Module, s []uint64) { s[0] = put(m, s[0], s[1], v()) })
	}
	reader(abi.FnKind, func() []byte { return []byte(h.p.ActiveEntry().Kind) })
	reader(abi.FnInput, func() []byte { return h.p.ActiveEntry().Input })
	reader(abi.FnCont, func() []byte { return h.p.ActiveEntry().Cont })
	fn(abi.FnCalls, 0, 1, func(m api.Module, s []uint64) { s[0] = uint64(len(h.kids)) })
	fn(abi.FnChildCode, 1, 1, func(m api.Module, s []uint64) {
		c, ok := h.child(s[0])
		switch {
		case !ok:
			s[0] = uint64(uint32(0xffffffff))
		case c.State == lp.StateFailed:
			s[0] = uint64(c.ErrCode)
		default:
			s[0] = 0
		}
	})
	fn(abi.FnChild, 3, 1, func(m api.Module, s []uint64) {
		c, ok := h.child(s[0])
		switch {
		case !ok:
			s[0] = uint64(uint32(0xffffffff))
		case c.State == lp.StateFailed:
			s[0] = put(m, s[1], s[2], []byte(c.ErrMsg))
		default:
			s[0] = put(m, s[1], s[2], c.Output)
		}
	})
	fn(abi.FnReply, 2, 0, func(m api.Module, s []uint64) {
		h.outcome(lp.OutcomeReply)
		h.out.data = get(m, s[0], s[1])
	})
	fn(abi.FnFail, 3, 0, func(m api.Module, s []uint64) {
		h.outcome(lp.OutcomeFail)
		h.out.code, h.out.data = uint32(s[0]), get(m, s[1], s[2])
	})
	fn(abi.FnCall, 8, 0, func(m api.Module, s []uint64) {
		h.outcome(lp.OutcomeCall)
		h.out.target, h.out.kind = string(get(m, s[0], s[1])), string(get(m, s[2], s[3]))
		h.out.data, h.out.cont = get(m, s[4], s[5]), get(m, s[6], s[7])
	})
	fn(abi.FnLog, 3, 0, func(m api.Module, s []uint64) { h.tb.Logf("guest log %d: %s", s[0], get(m, s[1], s[2])) })
	if _, err := b.Instantiate(h.ctx); err != nil {
		h.tb.Fatal(err)
	}
}

func (h *harness) outcome(op lp.Outcome) {
	if h.out.op != 0 {
		panic("second outcome")
	}
	h.out.op = op
}

// put implements (ptr, cap) -> len; a bad range traps the step.
func put(m api.Module, ptr, cap uint64, v []byte) uint64 {
	n := min(uint32(cap), uint32(len(v)))
	if !m.Memory().Write(uint32(ptr), v[:n]) {
		panic("out of range")
	}
	return uint64(len(v))
}

func get(m api.Module, ptr, n uint64) []byte {
	b, ok := m.Memory().Read(uint32(ptr), uint32(n))
	if !ok {
		panic("out of range")
	}
	return bytes.Clone(b)
}
