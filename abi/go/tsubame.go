package tsubame

import (
	"errors"
	"runtime"
	"strconv"
	"unsafe"

	"github.com/tsubame-rt/tsubame/abi"
)

// Failure codes a component commonly uses; see ABI.md §4 for all of them.
const (
	// CodeABIViolation is what the SDK fails with when replay finds the
	// handler nondeterministic or a continuation malformed.
	CodeABIViolation = abi.CodeABIViolation
	// CodeUser is the first code without a meaning of the host's.
	CodeUser = abi.CodeUser
	// CodeNotFound answers a kind no handler is registered for; the
	// gateway answers it as HTTP 404.
	CodeNotFound = 404
	// CodeError is the code of an error that is not an *Error: the gateway
	// answers it as HTTP 500.
	CodeError = 500
)

// Log levels for Log.
const (
	LogDebug = abi.LogDebug
	LogInfo  = abi.LogInfo
	LogWarn  = abi.LogWarn
	LogError = abi.LogError
)

// Error is a failure with its code: a child's failure as Ctx.Child and
// Seq.Call report it, or one a handler returns to fail with a chosen code.
type Error struct {
	Code uint32
	Msg  string
}

func (e *Error) Error() string {
	return e.Msg + " (code " + strconv.FormatUint(uint64(e.Code), 10) + ")"
}

// Handler serves one request kind in the explicit style: it runs once per
// step and returns the step's outcome, made by Ctx.Reply, Ctx.Call or
// Ctx.Fail.
type Handler func(c *Ctx) Outcome

// SeqHandler serves one request kind in the sequential style: it runs from
// the top on every step, calls other components with Seq.Call, and its
// result is the entry's reply (or failure, see Seq).
type SeqHandler func(s *Seq) ([]byte, error)

type handler struct {
	kind string
	fn   Handler
	seq  SeqHandler
}

// handlers is searched linearly: a component serves a handful of kinds,
// and on wasm a scan costs a fraction of a map lookup (about 0.6 µs).
var handlers []*handler

func lookup(kind []byte) *handler {
	for _, h := range handlers {
		if h.kind == string(kind) {
			return h
		}
	}
	return nil
}

// Handle registers h for requests of kind. Call it from an init function: a
// reactor module never runs main. It panics if kind is not a valid name or
// already has a handler, which makes the module fail to load.
func Handle(kind string, h Handler) { register(&handler{kind: kind, fn: h}) }

// HandleSeq registers a sequential-style handler for requests of kind, like
// Handle.
func HandleSeq(kind string, h SeqHandler) { register(&handler{kind: kind, seq: h}) }

func register(h *handler) {
	if !abi.ValidName(h.kind) {
		panic("tsubame: invalid kind name " + strconv.Quote(h.kind))
	}
	if h.fn == nil && h.seq == nil {
		panic("tsubame: nil handler for kind " + h.kind)
	}
	if lookup([]byte(h.kind)) != nil {
		panic("tsubame: two handlers for kind " + h.kind)
	}
	handlers = append(handlers, h)
}

// SetGCBudget sets how many bytes a component may allocate between two of
// the SDK's collections (DefaultGCBudget unless set); n <= 0 turns the
// SDK's collections off. A bigger budget costs fewer collections (about
// 1.5 ms each) and more memory. Turn them off only if the host recycles
// instances often enough: without them an instance that allocates grows
// until it hits its memory limit.
func SetGCBudget(n int) { st.gc.budget = uint64(max(n, 0)) }

// Log writes msg to the node's log at level (LogDebug to LogError), tagged
// with the component and the active entry. Call it during a step. Messages
// over 4 KiB are truncated.
func Log(level int, msg string) { hostLog(int32(level), strPtr(msg), uint32(len(msg))) }

// op is the kind of an Outcome.
type op uint8

const (
	opNone op = iota
	opReply
	opCall
	opFail
)

// Outcome is how a step ends. Make one with Ctx.Reply, Ctx.Call, Ctx.Fail or
// Ctx.FailErr; the zero Outcome is not valid and fails the entry.
type Outcome struct {
	op           op
	code         uint32
	target, kind string
	data, cont   []byte
	msg          string
}

// Ctx is the active entry as one step of an explicit-style handler sees it.
// Slices it returns are valid until the step ends: copy what you keep.
type Ctx struct {
	kind  string
	calls int32
	input []byte
	cont  []byte
	have  uint8 // which of input, cont, calls were read this step
}

const (
	haveInput = 1 << iota
	haveCont
	haveCalls
)

// Kind returns the request kind.
func (c *Ctx) Kind() string { return c.kind }

// Input returns the request's input.
func (c *Ctx) Input() []byte {
	if c.have&haveInput == 0 {
		c.input, _ = st.arena.read(readInput, 0)
		c.have |= haveInput
	}
	return c.input
}

// Cont returns the continuation saved by this entry's last Call, empty on
// the first step.
func (c *Ctx) Cont() []byte {
	if c.have&haveCont == 0 {
		c.cont, _ = st.arena.read(readCont, 0)
		c.have |= haveCont
	}
	return c.cont
}

// Calls returns how many calls made by this entry have finished. The newest
// result is Child(Calls()-1).
func (c *Ctx) Calls() int {
	if c.have&haveCalls == 0 {
		c.calls = hostCalls()
		c.have |= haveCalls
	}
	return int(c.calls)
}

// Child returns the result of finished call i (0-based, in call order): its
// reply, or an *Error with its failure code and message.
func (c *Ctx) Child(i int) ([]byte, error) {
	if i < 0 || i >= c.Calls() {
		return nil, &Error{Code: CodeABIViolation, Msg: "tsubame: no finished call " + strconv.Itoa(i)}
	}
	code := hostChildCode(int32(i))
	b, ok := st.arena.read(readChild, int32(i))
	if code < 0 || !ok {
		return nil, &Error{Code: CodeABIViolation, Msg: "tsubame: host has no call " + strconv.Itoa(i)}
	}
	if code != 0 {
		return nil, &Error{Code: uint32(code), Msg: string(b)}
	}
	return b, nil
}

// Reply ends the step with the entry's result.
func (c *Ctx) Reply(b []byte) Outcome { return Outcome{op: opReply, data: b} }

// Call ends the step by asking component target for kind with input. cont is
// saved in the entry: the step that runs when the call has finished reads
// it back with Cont.
func (c *Ctx) Call(target, kind string, input, cont []byte) Outcome {
	return Outcome{op: opCall, target: target, kind: kind, data: input, cont: cont}
}

// Fail ends the step with a failure. code must be at least 1; a Fail with
// code 0 fails with CodeABIViolation instead, saying so.
func (c *Ctx) Fail(code uint32, msg string) Outcome {
	if code == 0 {
		return Outcome{op: opFail, code: CodeABIViolation, msg: "tsubame: Fail with code 0: " + msg}
	}
	return Outcome{op: opFail, code: code, msg: msg}
}

// FailErr ends the step with err as a failure: an *Error (also one wrapped
// with %w) keeps its code, anything else fails with CodeError.
func (c *Ctx) FailErr(err error) Outcome {
	if err == nil {
		return c.Fail(CodeABIViolation, "tsubame: FailErr(nil)")
	}
	var e *Error
	if !errors.As(err, &e) {
		return c.Fail(CodeError, err.Error())
	}
	if e == err {
		return c.Fail(e.Code, e.Msg)
	}
	return c.Fail(e.Code, err.Error()) // keep the context the wrapping added
}

// state is everything one step uses, kept between steps so the hot path
// allocates nothing once the buffers have grown.
type state struct {
	arena arena
	ctx   Ctx
	seq   Seq
	gc    gcPolicy
}

var st = state{gc: gcPolicy{budget: DefaultGCBudget}}

// step runs one step: the body of the tsubame_step export.
func step() {
	pages := memoryPages()
	st.arena.reset()
	st.ctx = Ctx{}
	kb, _ := st.arena.read(readKind, 0)
	h := lookup(kb)
	var o Outcome
	switch {
	case h == nil:
		o = st.ctx.Fail(CodeNotFound, "tsubame: no handler for kind "+strconv.Quote(string(kb)))
	case h.seq != nil:
		st.ctx.kind = h.kind
		o = st.seq.run(&st.ctx, h.seq)
	default:
		st.ctx.kind = h.kind
		o = h.fn(&st.ctx)
	}
	emit(&o)
	st.seq.drop()
	grew := memoryPages() > pages
	if st.gc.tick(grew) && st.gc.afterStep(grew, readAllocs) {
		collect()
	}
}

// collect is runtime.GC; tests count its calls.
var collect = runtime.GC

func emit(o *Outcome) {
	switch o.op {
	case opReply:
		hostReply(bytesPtr(o.data), uint32(len(o.data)))
	case opCall:
		hostCall(strPtr(o.target), uint32(len(o.target)), strPtr(o.kind), uint32(len(o.kind)),
			bytesPtr(o.data), uint32(len(o.data)), bytesPtr(o.cont), uint32(len(o.cont)))
	case opFail:
		hostFail(o.code, strPtr(o.msg), uint32(len(o.msg)))
	default:
		msg := "tsubame: handler for kind " + st.ctx.kind + " returned no outcome"
		hostFail(CodeABIViolation, strPtr(msg), uint32(len(msg)))
	}
}

func bytesPtr(b []byte) unsafe.Pointer { return unsafe.Pointer(unsafe.SliceData(b)) }
func strPtr(s string) unsafe.Pointer   { return unsafe.Pointer(unsafe.StringData(s)) }

// reader names one of the host's (ptr, cap) -> len functions.
type reader uint8

const (
	readKind reader = iota
	readInput
	readCont
	readChild
)

func hostRead(r reader, i int32, p unsafe.Pointer, n uint32) int32 {
	switch r {
	case readKind:
		return hostKind(p, n)
	case readInput:
		return hostInput(p, n)
	case readCont:
		return hostCont(p, n)
	}
	return hostChild(i, p, n)
}

// arena holds the values read from the host during one step. Values are
// handed out as slices of it, so they stay valid for the whole step; when it
// is full a bigger one replaces it and the old one lives on as long as
// slices of it do.
type arena struct{ b []byte }

// maxKeep bounds the arena kept between steps, so one huge request does not
// pin its memory for the life of the instance.
const maxKeep = 4 << 20

func (a *arena) reset() {
	if cap(a.b) > maxKeep {
		a.b = nil
	}
	a.b = a.b[:0]
}

// read copies value r (child i for readChild) into the arena. It reports
// false if the host has no such value.
func (a *arena) read(r reader, i int32) ([]byte, bool) {
	free := a.b[len(a.b):cap(a.b)]
	n := hostRead(r, i, bytesPtr(free), uint32(len(free)))
	if n < 0 {
		return nil, false
	}
	if int(n) > len(free) {
		a.b = make([]byte, 0, max(2*cap(a.b), int(n), 4096))
		free = a.b[:cap(a.b)]
		if hostRead(r, i, bytesPtr(free), uint32(len(free))) != n {
			return nil, false
		}
	}
	a.b = a.b[:len(a.b)+int(n)]
	return free[:n:n], true
}
