package wasmhost

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/tetratelabs/wazero/api"

	"github.com/tsubame-rt/tsubame/abi"
	"github.com/tsubame-rt/tsubame/lp"
)

// KV is the key-value store behind the kv_* host functions (ABI.md §10).
// The host checks every pointer and length against the guest's memory and
// every size against the ABI's limits before it calls Do; Do resolves the
// bucket against the component's grants, applies the operation at most once
// per step identity, and answers with a status. node/kv implements it.
//
// Do is called on the step's goroutine with the step's context (its
// deadline bounds the operation) and must not keep op or its slices.
type KV interface {
	Do(ctx context.Context, op *KVOp) KVResult
}

// KVOpKind names a KV operation.
type KVOpKind uint8

// KV operations. ONLY APPEND: journals record them.
const (
	KVGet KVOpKind = 1 + iota
	KVSet
	KVDel
	KVAdd
	KVCAS
)

func (k KVOpKind) String() string {
	switch k {
	case KVGet:
		return "get"
	case KVSet:
		return "set"
	case KVDel:
		return "del"
	case KVAdd:
		return "add"
	case KVCAS:
		return "cas"
	}
	return fmt.Sprintf("kvop(%d)", uint8(k))
}

// StepID is a step's identity, the same on every run of the step: after a
// resend by the gateway (same LP ID) and after a re-run on another node. It
// is the step's position in the LP's call tree: the entry (entries are
// appended in call order, so a deterministic LP numbers them alike on every
// run) and how many of the entry's calls had finished when the step began.
type StepID struct {
	LP     lp.ID
	Entry  int32
	Resume uint32
	// Deadline is the LP's deadline (Unix ns, 0 for none): a journal of the
	// step need not outlive it by much.
	Deadline int64
}

func (s StepID) String() string { return fmt.Sprintf("%s/%d.%d", s.LP, s.Entry, s.Resume) }

// KVOp is one KV operation of a step.
type KVOp struct {
	Component string
	Step      StepID
	// Seq numbers the step's KV operations from 0, in the order made.
	Seq  int
	Kind KVOpKind
	// Bucket as the guest named it; "" is the component's private bucket.
	Bucket string
	Key    []byte
	// Value is the value to store (set, cas).
	Value []byte
	// Expect is the value cas expects, unless ExpectAbsent.
	Expect       []byte
	ExpectAbsent bool
	// Delta is add's increment.
	Delta int64
	// TTL is how long a stored value lives (set, cas); 0 is forever.
	TTL time.Duration
}

// KVResult is what a KV operation answered.
type KVResult struct {
	// Status is one of abi.KV*.
	Status int
	// Value is get's value, or cas's current value on abi.KVMismatch
	// (Found false: there is none).
	Value []byte
	Found bool
	// Int is add's new value.
	Int int64
	// Err says why, for abi.KVUnavailable, abi.KVNotGranted and
	// abi.KVInvalid; the host logs it. An Err wrapping ErrKVReplay fails the
	// step with abi.CodeABIViolation instead of answering the guest.
	Err error
}

// ErrKVReplay is a re-run of a step making a different KV operation than the
// first run made at the same position: the component is not deterministic,
// and answering it from the journal would be wrong.
var ErrKVReplay = errors.New("nondeterministic replay")

// kvState is a step's KV bookkeeping.
type kvState struct {
	ops   int    // operations made so far in the step
	seq   int    // operations made so far since the last kv_after
	after uint32 // the position set by kv_after; valid when scoped
	scope bool   // kv_after was called this step
	last  []byte // the last value kv_get or kv_cas saw, for kv_value
	found bool   // last holds a value
}

// kvArgs reads the bucket and key every kv_* function starts with, and
// checks the names and sizes the host can check alone. It returns a status
// (> 0) instead when they are wrong.
func (in *instance) kvArgs(fn string, stack []uint64) (bucket string, key []byte, status int) {
	b := in.span(fn, api.DecodeU32(stack[0]), api.DecodeU32(stack[1]))
	key = in.span(fn, api.DecodeU32(stack[2]), api.DecodeU32(stack[3]))
	switch {
	case len(b) > abi.MaxName || len(key) > abi.MaxKVKey:
		return "", nil, abi.KVTooLarge
	case len(b) > 0 && !abi.ValidName(string(b)), len(key) == 0:
		return "", nil, abi.KVInvalid
	case in.st.kv.ops >= abi.MaxKVOps:
		return "", nil, abi.KVTooLarge
	}
	return string(b), key, 0
}

// kvDo runs op, logs why it failed when it says, and returns its result.
func (in *instance) kvDo(ctx context.Context, op *KVOp) KVResult {
	st := &in.st
	op.Component = st.component
	resume := uint32(len(in.children()))
	if st.kv.scope {
		resume = st.kv.after
	}
	op.Step = StepID{LP: st.p.ID, Entry: st.idx, Resume: resume, Deadline: st.p.Deadline}
	op.Seq = st.kv.seq
	st.kv.seq++
	st.kv.ops++
	kv := in.m.rt.cfg.kv
	if kv == nil {
		return KVResult{Status: abi.KVNotGranted}
	}
	r := kv.Do(ctx, op)
	if r.Err != nil && errors.Is(r.Err, ErrKVReplay) {
		in.trap(abi.CodeABIViolation, "kv_%s at operation %d of step %s: %v", op.Kind, op.Seq, op.Step, r.Err)
	}
	if r.Err != nil {
		// A grant missing is a configuration error worth a warning; an
		// unavailable backend shows in the node's status and its own log.
		level := slog.LevelDebug
		if r.Status == abi.KVNotGranted {
			level = slog.LevelWarn
		}
		if log := in.m.rt.cfg.logger; log.Enabled(ctx, level) {
			log.LogAttrs(ctx, level, "kv operation failed", append(in.logAttrs(),
				slog.String("op", op.Kind.String()), slog.String("bucket", op.Bucket),
				slog.String("status", abi.KVStatusName(r.Status)), slog.String("err", r.Err.Error()))...)
		}
	}
	return r
}

// kvStatus encodes a KV result status as the functions' i32 return.
func kvStatus(stack []uint64, status int) {
	stack[0] = api.EncodeI32(int32(-status))
}

// kvTTL reads a ttl_ms argument; one over abi.MaxKVTTLMilli is invalid.
func kvTTL(v uint64) (time.Duration, bool) {
	ms := api.DecodeU32(v)
	if ms > abi.MaxKVTTLMilli {
		return 0, false
	}
	return time.Duration(ms) * time.Millisecond, true
}

// hostKVAfter implements kv_after(n): a handler replayed from the top (the
// sequential style, ABI.md §6) says that the operations it makes next are
// the ones that follow its call number n, so they are journaled, and
// answered on replay, under the step that first made them (the step that
// began with n calls finished) rather than under this one.
func hostKVAfter(ctx context.Context, mod api.Module, stack []uint64) {
	in := current(ctx, mod)
	n := api.DecodeU32(stack[0])
	if int64(n) > int64(len(in.children())) {
		kvStatus(stack, abi.KVInvalid)
		return
	}
	in.st.kv.after, in.st.kv.scope, in.st.kv.seq = n, true, 0
	stack[0] = 0
}

func hostKVGet(ctx context.Context, mod api.Module, stack []uint64) {
	in := current(ctx, mod)
	bucket, key, status := in.kvArgs(abi.FnKVGet, stack)
	dst := in.span(abi.FnKVGet, api.DecodeU32(stack[4]), api.DecodeU32(stack[5]))
	if status != 0 {
		kvStatus(stack, status)
		return
	}
	r := in.kvDo(ctx, &KVOp{Kind: KVGet, Bucket: bucket, Key: key})
	in.st.kv.last, in.st.kv.found = append(in.st.kv.last[:0], r.Value...), r.Status == abi.KVOK
	if r.Status != abi.KVOK {
		kvStatus(stack, r.Status)
		return
	}
	copy(dst, r.Value)
	stack[0] = api.EncodeU32(uint32(len(r.Value)))
}

func hostKVValue(ctx context.Context, mod api.Module, stack []uint64) {
	in := current(ctx, mod)
	dst := in.span(abi.FnKVValue, api.DecodeU32(stack[0]), api.DecodeU32(stack[1]))
	if !in.st.kv.found {
		kvStatus(stack, abi.KVNotFound)
		return
	}
	copy(dst, in.st.kv.last)
	stack[0] = api.EncodeU32(uint32(len(in.st.kv.last)))
}

func hostKVSet(ctx context.Context, mod api.Module, stack []uint64) {
	in := current(ctx, mod)
	bucket, key, status := in.kvArgs(abi.FnKVSet, stack)
	val := in.span(abi.FnKVSet, api.DecodeU32(stack[4]), api.DecodeU32(stack[5]))
	ttl, ok := kvTTL(stack[6])
	switch {
	case status != 0:
	case len(val) > abi.MaxKVValue:
		status = abi.KVTooLarge
	case !ok:
		status = abi.KVInvalid
	default:
		status = in.kvDo(ctx, &KVOp{Kind: KVSet, Bucket: bucket, Key: key, Value: val, TTL: ttl}).Status
	}
	kvStatus(stack, status)
}

func hostKVDel(ctx context.Context, mod api.Module, stack []uint64) {
	in := current(ctx, mod)
	bucket, key, status := in.kvArgs(abi.FnKVDel, stack)
	if status == 0 {
		status = in.kvDo(ctx, &KVOp{Kind: KVDel, Bucket: bucket, Key: key}).Status
	}
	kvStatus(stack, status)
}

func hostKVAdd(ctx context.Context, mod api.Module, stack []uint64) {
	in := current(ctx, mod)
	bucket, key, status := in.kvArgs(abi.FnKVAdd, stack)
	delta := int64(api.DecodeI32(stack[4]))
	out := in.span(abi.FnKVAdd, api.DecodeU32(stack[5]), 8)
	if status == 0 {
		r := in.kvDo(ctx, &KVOp{Kind: KVAdd, Bucket: bucket, Key: key, Delta: delta})
		if status = r.Status; status == abi.KVOK {
			binary.LittleEndian.PutUint64(out, uint64(r.Int))
		}
	}
	kvStatus(stack, status)
}

func hostKVCAS(ctx context.Context, mod api.Module, stack []uint64) {
	in := current(ctx, mod)
	bucket, key, status := in.kvArgs(abi.FnKVCAS, stack)
	absent := api.DecodeU32(stack[5]) == abi.KVExpectAbsent
	var expect []byte
	if !absent {
		expect = in.span(abi.FnKVCAS, api.DecodeU32(stack[4]), api.DecodeU32(stack[5]))
	}
	val := in.span(abi.FnKVCAS, api.DecodeU32(stack[6]), api.DecodeU32(stack[7]))
	ttl, ok := kvTTL(stack[8])
	switch {
	case status != 0:
	case len(val) > abi.MaxKVValue || len(expect) > abi.MaxKVValue:
		status = abi.KVTooLarge
	case !ok:
		status = abi.KVInvalid
	default:
		r := in.kvDo(ctx, &KVOp{Kind: KVCAS, Bucket: bucket, Key: key, Expect: expect, ExpectAbsent: absent, Value: val, TTL: ttl})
		status = r.Status
		if status == abi.KVMismatch {
			in.st.kv.last, in.st.kv.found = append(in.st.kv.last[:0], r.Value...), r.Found
		}
	}
	kvStatus(stack, status)
}
