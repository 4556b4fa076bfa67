package wasmhost

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/tsubame-rt/tsubame/abi"
	"github.com/tsubame-rt/tsubame/lp"
)

// hostFuncs implements every function of ABI.md §3. They are stack-based
// (api.GoModuleFunc: no reflection, no allocation on the happy path) and
// find the running step through ctx, which is the instance's *stepCtx.
var hostFuncs = map[string]api.GoModuleFunc{
	abi.FnKind:      hostKind,
	abi.FnInput:     hostInput,
	abi.FnCont:      hostCont,
	abi.FnCalls:     hostCalls,
	abi.FnChildCode: hostChildCode,
	abi.FnChild:     hostChild,
	abi.FnReply:     hostReply,
	abi.FnCall:      hostCall,
	abi.FnFail:      hostFail,
	abi.FnLog:       hostLog,
	abi.FnBlobPut:   hostBlobPut,
	abi.FnBlobRead:  hostBlobRead,
	abi.FnInputRef:  hostInputRef,
	abi.FnChildRef:  hostChildRef,
	abi.FnReplyRef:  hostReplyRef,

	abi.FnKVGet:   hostKVGet,
	abi.FnKVValue: hostKVValue,
	abi.FnKVSet:   hostKVSet,
	abi.FnKVDel:   hostKVDel,
	abi.FnKVAdd:   hostKVAdd,
	abi.FnKVCAS:   hostKVCAS,
	abi.FnKVAfter: hostKVAfter,
}

func instantiateHost(ctx context.Context, wz wazero.Runtime) error {
	b := wz.NewHostModuleBuilder(abi.Module)
	for name, sig := range abi.HostFunctions {
		fn, ok := hostFuncs[name]
		if !ok {
			return fmt.Errorf("host function %q of the ABI is not implemented", name)
		}
		b.NewFunctionBuilder().
			WithGoModuleFunction(fn, i32s(sig.Params), i32s(sig.Results)).
			WithName(name).
			Export(name)
	}
	_, err := b.Instantiate(ctx)
	return err
}

func i32s(n int) []api.ValueType {
	ts := make([]api.ValueType, n)
	for i := range ts {
		ts[i] = api.ValueTypeI32
	}
	return ts
}

// errOutsideStep traps a guest that calls a host function from
// _initialize or tsubame_abi_version: there is no entry to read or end.
var errOutsideStep = errors.New("tsubame host function called outside tsubame_step")

// current returns the instance whose step is running under ctx.
func current(ctx context.Context, mod api.Module) *instance {
	s, ok := ctx.(*stepCtx)
	if !ok || s.in.mod != mod || s.in.st.p == nil {
		panic(errOutsideStep)
	}
	return s.in
}

// trap ends the step with a host-detected failure: the guest's call does
// not return (wazero recovers the panic and Step reports in.st.fault).
func (in *instance) trap(code uint32, format string, args ...any) {
	in.st.fault = &StepError{Component: in.st.component, Code: code, Err: fmt.Errorf(format, args...)}
	panic(in.st.fault)
}

// span returns the guest memory [ptr, ptr+n), trapping the step if any of
// it lies outside memory. ptr and n are unsigned; the sum cannot wrap
// because the check is done in 64 bits (api.Memory.Read).
func (in *instance) span(fn string, ptr, n uint32) []byte {
	if n == 0 {
		return nil
	}
	b, ok := in.mem.Read(ptr, n)
	if !ok {
		in.trap(abi.CodeABIViolation, "%s: range [%d, %d) is outside memory of %d bytes",
			fn, ptr, uint64(ptr)+uint64(n), in.mem.Size())
	}
	return b
}

// deliver implements the (ptr, cap) -> len readers: it copies min(len,
// cap) bytes of v to ptr and returns len.
func deliver[T string | []byte](in *instance, fn string, stack []uint64, ptrAt int, v T) {
	dst := in.span(fn, api.DecodeU32(stack[ptrAt]), api.DecodeU32(stack[ptrAt+1]))
	copy(dst, v)
	stack[0] = api.EncodeU32(uint32(len(v)))
}

func hostKind(ctx context.Context, mod api.Module, stack []uint64) {
	in := current(ctx, mod)
	deliver(in, abi.FnKind, stack, 0, in.st.e.Kind)
}

func hostInput(ctx context.Context, mod api.Module, stack []uint64) {
	in := current(ctx, mod)
	deliver(in, abi.FnInput, stack, 0, in.value(abi.FnInput, in.st.e.Input, in.st.e.InputRef))
}

func hostCont(ctx context.Context, mod api.Module, stack []uint64) {
	in := current(ctx, mod)
	deliver(in, abi.FnCont, stack, 0, in.st.e.Cont)
}

// children lists the finished calls of the entry, computed once per step
// into a buffer the instance reuses. The active entry's children are all
// finished (an unfinished one would be active), in call order.
func (in *instance) children() []int32 {
	st := &in.st
	if !st.kidsOK {
		for j := st.idx + 1; int(j) < len(st.p.Entries); j++ {
			if c := &st.p.Entries[j]; c.Parent == st.idx && c.State.Finished() {
				st.kids = append(st.kids, j)
			}
		}
		st.kidsOK = true
	}
	return st.kids
}

// child returns finished call number i (signed: negative is "no such call").
func (in *instance) child(i uint32) *lp.Entry {
	kids := in.children()
	if int32(i) < 0 || int(i) >= len(kids) {
		return nil
	}
	return &in.st.p.Entries[kids[i]]
}

func hostCalls(ctx context.Context, mod api.Module, stack []uint64) {
	in := current(ctx, mod)
	stack[0] = api.EncodeU32(uint32(len(in.children())))
}

func hostChildCode(ctx context.Context, mod api.Module, stack []uint64) {
	in := current(ctx, mod)
	c := in.child(api.DecodeU32(stack[0]))
	switch {
	case c == nil:
		stack[0] = api.EncodeI32(-1)
	case c.State == lp.StateFailed:
		stack[0] = api.EncodeU32(c.ErrCode)
	default:
		stack[0] = 0
	}
}

func hostChild(ctx context.Context, mod api.Module, stack []uint64) {
	in := current(ctx, mod)
	c := in.child(api.DecodeU32(stack[0]))
	switch {
	case c == nil:
		in.span(abi.FnChild, api.DecodeU32(stack[1]), api.DecodeU32(stack[2])) // still checked
		stack[0] = api.EncodeI32(-1)
	case c.State == lp.StateFailed:
		deliver(in, abi.FnChild, stack, 1, c.ErrMsg)
	default:
		deliver(in, abi.FnChild, stack, 1, in.value(abi.FnChild, c.Output, c.OutputRef))
	}
}

// outcome traps a second outcome and marks this one given.
func (in *instance) outcome(fn string) {
	if in.st.done {
		in.trap(abi.CodeABIViolation, "%s: the step already has an outcome (%s)", fn, in.st.res.Outcome)
	}
	in.st.done = true
}

func hostReply(ctx context.Context, mod api.Module, stack []uint64) {
	in := current(ctx, mod)
	in.outcome(abi.FnReply)
	out := in.span(abi.FnReply, api.DecodeU32(stack[0]), api.DecodeU32(stack[1]))
	if in.byRef(len(out)) {
		ref, err := in.put(out, false)
		if err != nil {
			in.trap(blobCode(err), "reply of %d bytes by reference: %v", len(out), err)
		}
		in.st.res.Outcome, in.st.res.Output, in.st.res.OutputRef = lp.OutcomeReply, ref.Bytes(), true
		return
	}
	if lim := in.m.rt.cfg.limits.MaxBytes; len(out) > lim {
		in.trap(abi.CodeLimit, "reply of %d bytes exceeds the limit of %d", len(out), lim)
	}
	in.st.res = Result{Outcome: lp.OutcomeReply, Output: clone(out), Blobs: in.st.res.Blobs}
}

func hostCall(ctx context.Context, mod api.Module, stack []uint64) {
	in := current(ctx, mod)
	in.outcome(abi.FnCall)
	target := in.span(abi.FnCall, api.DecodeU32(stack[0]), api.DecodeU32(stack[1]))
	kind := in.span(abi.FnCall, api.DecodeU32(stack[2]), api.DecodeU32(stack[3]))
	input := in.span(abi.FnCall, api.DecodeU32(stack[4]), api.DecodeU32(stack[5]))
	cont := in.span(abi.FnCall, api.DecodeU32(stack[6]), api.DecodeU32(stack[7]))
	if len(target) > abi.MaxName || len(kind) > abi.MaxName {
		in.trap(abi.CodeABIViolation, "call: target of %d bytes or kind of %d bytes is over %d", len(target), len(kind), abi.MaxName)
	}
	t, k := string(target), string(kind) // the Result needs both as strings anyway
	for _, name := range [2]string{t, k} {
		if !abi.ValidName(name) {
			in.trap(abi.CodeABIViolation, "call: invalid name %q (1 to %d bytes of letters, digits, _ - ., starting with a letter)",
				truncate(name, 2*abi.MaxName), abi.MaxName)
		}
	}
	lim := &in.m.rt.cfg.limits
	p := in.st.p
	inRef := in.byRef(len(input))
	switch {
	case !inRef && len(input) > lim.MaxBytes:
		in.trap(abi.CodeLimit, "call: input of %d bytes exceeds the limit of %d", len(input), lim.MaxBytes)
	case len(cont) > lim.MaxCont:
		in.trap(abi.CodeLimit, "call: continuation of %d bytes exceeds the limit of %d", len(cont), lim.MaxCont)
	case len(p.Entries)+1 > lim.MaxEntries:
		in.trap(abi.CodeLimit, "call: the process would have %d entries, over the limit of %d", len(p.Entries)+1, lim.MaxEntries)
	case p.Depth()+1 > lim.MaxDepth:
		in.trap(abi.CodeLimit, "call: nesting depth %d exceeds the limit of %d", p.Depth()+1, lim.MaxDepth)
	}
	if inRef {
		ref, err := in.put(input, false)
		if err != nil {
			in.trap(blobCode(err), "call: input of %d bytes by reference: %v", len(input), err)
		}
		input, in.st.res.InputRef = ref.Bytes(), true
	}
	in.st.res.Outcome, in.st.res.Target, in.st.res.Kind = lp.OutcomeCall, t, k
	in.st.res.Input, in.st.res.Cont = clone(input), clone(cont)
}

func hostFail(ctx context.Context, mod api.Module, stack []uint64) {
	in := current(ctx, mod)
	in.outcome(abi.FnFail)
	code := api.DecodeU32(stack[0])
	msg := in.span(abi.FnFail, api.DecodeU32(stack[1]), api.DecodeU32(stack[2]))
	switch {
	case code == 0:
		in.trap(abi.CodeABIViolation, "fail: code 0 (failure codes start at 1)")
	case code > math.MaxInt32:
		// child_code hands the code to the caller as an i32, where a
		// negative value means "no such call".
		in.trap(abi.CodeABIViolation, "fail: code %d is over %d (failure codes are 1 to 2^31-1)", code, math.MaxInt32)
	}
	in.st.res.Outcome, in.st.res.Code, in.st.res.Msg = lp.OutcomeFail, code, truncate(msg, in.m.rt.cfg.limits.MaxMsg)
}

func hostLog(ctx context.Context, mod api.Module, stack []uint64) {
	in := current(ctx, mod)
	level := int32(api.DecodeU32(stack[0]))
	msg := in.span(abi.FnLog, api.DecodeU32(stack[1]), api.DecodeU32(stack[2]))
	level = min(max(level, abi.LogDebug), abi.LogError)
	slevel := slog.Level(4*level - 4) // 0 debug, 1 info, 2 warn, 3 error
	in.guestLog(slevel, truncate(msg, abi.MaxLogMsg), in.logAttrs()...)
}

// logAttrs tags a guest's log line with where it came from.
func (in *instance) logAttrs() []slog.Attr {
	attrs := []slog.Attr{slog.String("component", in.st.component), slog.String("module", in.m.hash.Short())}
	if p := in.st.p; p != nil {
		attrs = append(attrs, slog.String("lp", p.ID.String()), slog.Int("entry", int(in.st.idx)))
	}
	return attrs
}

func clone(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return append([]byte(nil), b...)
}
