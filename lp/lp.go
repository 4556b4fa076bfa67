package lp

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
)

// ID identifies a Process for its whole life, across migrations and resends.
type ID [16]byte

// NewID returns a random ID.
func NewID() (id ID) {
	_, _ = rand.Read(id[:]) // crypto/rand.Read never fails on supported platforms.
	return id
}

func (id ID) String() string { return hex.EncodeToString(id[:]) }

// Hash is the SHA-256 of a module's bytes: the identity of one version of a
// component.
type Hash [32]byte

func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// Short is the first 12 hex digits, for logs and tables.
func (h Hash) Short() string { return hex.EncodeToString(h[:6]) }

// IsZero reports whether h is unset.
func (h Hash) IsZero() bool { return h == Hash{} }

// State is where an entry is in its life.
type State uint8

// Entry states. ONLY APPEND: the values are on the wire.
const (
	// StateReady: the entry waits to run, either for the first time or to
	// resume after its child finished. The active entry is always Ready.
	StateReady State = 1
	// StateWaiting: the entry's component called another and is suspended
	// until the child finishes.
	StateWaiting State = 2
	// StateDone: the component replied; Output holds the reply.
	StateDone State = 3
	// StateFailed: the component (or the host on its behalf) failed;
	// ErrCode and ErrMsg say why.
	StateFailed State = 4
)

func (s State) String() string {
	switch s {
	case StateReady:
		return "ready"
	case StateWaiting:
		return "waiting"
	case StateDone:
		return "done"
	case StateFailed:
		return "failed"
	}
	return fmt.Sprintf("state(%d)", uint8(s))
}

// Finished reports whether the entry has a result (reply or failure).
func (s State) Finished() bool { return s == StateDone || s == StateFailed }

// NoEntry is the index used for "no entry": the root's parent, and the
// Active index of a finished Process.
const NoEntry = -1

// Entry is one internal request to one component.
type Entry struct {
	// Parent is the index of the calling entry, or NoEntry for the root.
	Parent int32
	// Target is the component name; Kind the request kind it serves.
	Target, Kind string
	// Input is the request's parameters. Cleared once the entry finishes.
	Input []byte
	// Cont is the continuation the component saved when it last called
	// another component. Cleared once the entry finishes.
	Cont []byte
	// Module is the hash of the module that ran this entry's last step: a
	// saved continuation is only ever resumed by the same module version.
	// Zero until the entry first runs.
	Module Hash
	// Steps counts the steps this entry has run.
	Steps uint32
	// State is the entry's state.
	State State
	// ErrCode is the failure code when State is StateFailed (never 0 then).
	ErrCode uint32
	// Output is the reply when StateDone; ErrMsg the message when StateFailed.
	Output []byte
	ErrMsg string
	// InputRef and OutputRef mark an Input or Output that holds an encoded
	// Ref (RefLen bytes) in place of the bytes: a large value travels by
	// reference, its bytes in a blob (blob.go). Hosts resolve them, so a
	// component reads the same bytes either way.
	InputRef, OutputRef bool
}

// Outcome is what one step did.
type Outcome uint8

// Step outcomes. ONLY APPEND: the values are on the wire.
const (
	OutcomeReply Outcome = 1
	OutcomeCall  Outcome = 2
	OutcomeFail  Outcome = 3
)

func (o Outcome) String() string {
	switch o {
	case OutcomeReply:
		return "reply"
	case OutcomeCall:
		return "call"
	case OutcomeFail:
		return "fail"
	}
	return fmt.Sprintf("outcome(%d)", uint8(o))
}

// Move says why an LP left the node that ran a step.
type Move uint8

// Reasons for a move. ONLY APPEND: the values are on the wire.
const (
	// MoveNone: the LP did not leave after the step (the next step ran on
	// the same node), or has not left yet.
	MoveNone Move = 0
	// MoveNotHeld: the next step's component is not held by this node.
	MoveNotHeld Move = 1
	// MoveOverloaded: this node's load was markedly above its peers'.
	MoveOverloaded Move = 2
	// MovePushed: the LP waited in an overloaded node's queue and was pushed
	// out to a less loaded holder.
	MovePushed Move = 3
	// MoveDrain: the node was shutting down and handed its LPs off.
	MoveDrain Move = 4
	// MoveReturn: the root entry finished and the LP went back to its origin.
	MoveReturn Move = 5

	maxMove = MoveReturn
)

func (m Move) String() string {
	switch m {
	case MoveNone:
		return "none"
	case MoveNotHeld:
		return "not-held"
	case MoveOverloaded:
		return "overloaded"
	case MovePushed:
		return "pushed"
	case MoveDrain:
		return "drain"
	case MoveReturn:
		return "return"
	}
	return fmt.Sprintf("move(%d)", uint8(m))
}

// Step is one line of a Process's trace: which node ran which entry, what
// happened, and why the LP moved on. The trace is how tests, `tsubame exec
// -v` and `tsubame trace` see where an LP went: it travels with the LP, so
// the origin holds the whole journey when the LP comes back.
type Step struct {
	Node    string
	Entry   int32
	Outcome Outcome
	// Micros is how long the step ran, in microseconds.
	Micros uint32
	// Start is when the step began, in Unix microseconds (node clocks).
	Start int64
	// WaitMicros is how long the LP waited in the node's run queue before
	// the step, in microseconds.
	WaitMicros uint32
	// Next says why the LP left the node after this step (MoveNone if it
	// stayed). The node that migrates the LP sets it on the last step.
	Next Move
}

// TraceContext is the W3C trace context (a traceparent's trace ID, parent
// span ID and flags, and the tracestate) that an LP carries so that the
// spans every node records for it join one trace. The zero value means the
// LP is not part of a trace.
type TraceContext struct {
	TraceID [16]byte
	// SpanID is the span the next step's span is a child of: the origin's
	// request span.
	SpanID [8]byte
	// Flags are the W3C trace-flags; bit 0 is "sampled".
	Flags byte
	// State is the W3C tracestate header value, at most MaxTraceState bytes.
	State string
}

// MaxTraceState is the longest tracestate an LP carries: W3C Trace Context
// lets a vendor drop tracestate beyond 512 bytes.
const MaxTraceState = 512

// IsZero reports whether tc is unset.
func (tc *TraceContext) IsZero() bool {
	return tc.TraceID == [16]byte{} && tc.SpanID == [8]byte{} && tc.Flags == 0 && tc.State == ""
}

// Sampled reports whether the trace's sampled flag is set.
func (tc *TraceContext) Sampled() bool { return tc.Flags&1 == 1 }

// valid reports whether a set trace context has the non-zero IDs W3C
// requires.
func (tc *TraceContext) valid() error {
	if tc.IsZero() {
		return nil
	}
	if tc.TraceID == [16]byte{} || tc.SpanID == [8]byte{} {
		return errors.New("lp: trace context has a zero trace or span ID")
	}
	if len(tc.State) > MaxTraceState {
		return &LimitError{What: "tracestate bytes", Got: len(tc.State), Limit: MaxTraceState}
	}
	return nil
}

// Process is a lightweight process: one request and everything it needs.
type Process struct {
	ID ID
	// Origin is where the finished Process returns: the name of the
	// gateway or node that created it.
	Origin string
	// Attempt counts resends of the same request (0 for the first).
	Attempt uint32
	// Deadline is the Unix time in nanoseconds after which nobody should
	// work on this Process any more; 0 means none.
	Deadline int64
	// Active is the index of the entry to run next, or NoEntry when the
	// root entry has finished.
	Active int32
	// Entries, the root first. A child always comes after its parent.
	Entries []Entry
	// Trace records the most recent steps, oldest first, at most
	// Limits.MaxTrace of them; TraceDropped counts the ones dropped.
	Trace        []Step
	TraceDropped uint32
	// TraceContext joins the spans of every step into one distributed
	// trace; zero when the LP is not traced.
	TraceContext TraceContext
	// Blobs lists the blobs the Process refers to and who holds each
	// (blob.go); empty for a Process whose data is all inline.
	Blobs []Blob
}

// New returns a Process whose root entry asks target for kind with input.
func New(origin, target, kind string, input []byte) *Process {
	return &Process{
		ID:      NewID(),
		Origin:  origin,
		Active:  0,
		Entries: []Entry{{Parent: NoEntry, Target: target, Kind: kind, Input: input, State: StateReady}},
	}
}

// Finished reports whether the root entry has a result.
func (p *Process) Finished() bool { return p.Active == NoEntry }

// Root returns the root entry, or nil for an empty Process.
func (p *Process) Root() *Entry {
	if len(p.Entries) == 0 {
		return nil
	}
	return &p.Entries[0]
}

// ActiveEntry returns the entry to run next, or nil when finished.
func (p *Process) ActiveEntry() *Entry {
	if p.Active < 0 || int(p.Active) >= len(p.Entries) {
		return nil
	}
	return &p.Entries[p.Active]
}

// Depth returns how many ancestors the active entry has.
func (p *Process) Depth() int {
	d := 0
	for i := p.Active; i >= 0 && int(i) < len(p.Entries); i = p.Entries[i].Parent {
		if p.Entries[i].Parent == NoEntry {
			return d
		}
		d++
	}
	return d
}

// Children returns the indexes of the finished children of entry i, in the
// order they were called. Those are the calls the component has seen
// complete: the ABI's calls() and child(n).
func (p *Process) Children(i int32) []int32 {
	var out []int32
	for j := i + 1; int(j) < len(p.Entries); j++ {
		if p.Entries[j].Parent == i && p.Entries[j].State.Finished() {
			out = append(out, j)
		}
	}
	return out
}

// ErrFinished is returned by the transitions when the Process has no active
// entry.
var ErrFinished = errors.New("lp: process already finished")

// LimitError says which limit a transition or a decode would exceed.
type LimitError struct {
	What       string // "entries", "depth", "input", "continuation", ...
	Got, Limit int
}

func (e *LimitError) Error() string {
	return fmt.Sprintf("lp: %s %d exceeds limit %d", e.What, e.Got, e.Limit)
}

// Reply records the active entry's reply and makes its parent active.
func (p *Process) Reply(output []byte) error {
	e := p.ActiveEntry()
	if e == nil {
		return ErrFinished
	}
	e.State, e.Output = StateDone, output
	p.finish(e)
	return nil
}

// ReplyRef is Reply with the output in a blob: the entry records ref.
func (p *Process) ReplyRef(ref Ref) error {
	e := p.ActiveEntry()
	if e == nil {
		return ErrFinished
	}
	e.State, e.Output, e.OutputRef = StateDone, ref.Bytes(), true
	p.finish(e)
	return nil
}

// Fail records the active entry's failure and makes its parent active. A
// zero code is recorded as 1 (trap), since 0 means success on the ABI.
func (p *Process) Fail(code uint32, msg string) error {
	e := p.ActiveEntry()
	if e == nil {
		return ErrFinished
	}
	if code == 0 {
		code = 1
	}
	e.State, e.ErrCode, e.ErrMsg = StateFailed, code, msg
	p.finish(e)
	return nil
}

// finish drops what a finished entry no longer needs (its input, its
// continuation, the results of its own children: nobody will resume it
// again) and hands control back to its parent.
func (p *Process) finish(e *Entry) {
	e.Input, e.Cont, e.InputRef = nil, nil, false
	self := p.Active
	for j := self + 1; int(j) < len(p.Entries); j++ {
		if p.Entries[j].Parent == self {
			p.Entries[j].Output, p.Entries[j].ErrMsg, p.Entries[j].OutputRef = nil, "", false
		}
	}
	p.Active = e.Parent
	if e.Parent != NoEntry {
		p.Entries[e.Parent].State = StateReady
	}
}

// Call suspends the active entry with its continuation and appends a child
// entry asking target for kind with input; the child becomes active.
func (p *Process) Call(target, kind string, input, cont []byte, lim Limits) error {
	e := p.ActiveEntry()
	if e == nil {
		return ErrFinished
	}
	lim = lim.orDefault()
	if n := len(p.Entries) + 1; n > lim.MaxEntries {
		return &LimitError{What: "entries", Got: n, Limit: lim.MaxEntries}
	}
	if d := p.Depth() + 1; d > lim.MaxDepth {
		return &LimitError{What: "call depth", Got: d, Limit: lim.MaxDepth}
	}
	if len(cont) > lim.MaxCont {
		return &LimitError{What: "continuation bytes", Got: len(cont), Limit: lim.MaxCont}
	}
	if len(input) > lim.MaxBytes {
		return &LimitError{What: "input bytes", Got: len(input), Limit: lim.MaxBytes}
	}
	// Names are checked here, not only by the decoder, so that a bad call
	// fails at the step that made it rather than at the next migration.
	if target == "" || kind == "" {
		return errors.New("lp: call needs a target and a kind")
	}
	if n := max(len(target), len(kind)); n > lim.MaxName {
		return &LimitError{What: "name bytes", Got: n, Limit: lim.MaxName}
	}
	e.State, e.Cont = StateWaiting, cont
	p.Entries = append(p.Entries, Entry{Parent: p.Active, Target: target, Kind: kind, Input: input, State: StateReady})
	p.Active = int32(len(p.Entries) - 1)
	return nil
}

// CallRef is Call with the child's input in a blob: the child entry records
// ref in place of its input.
func (p *Process) CallRef(target, kind string, input Ref, cont []byte, lim Limits) error {
	if err := p.Call(target, kind, input.Bytes(), cont, lim); err != nil {
		return err
	}
	p.Entries[p.Active].InputRef = true
	return nil
}

// Record appends a step to the trace, dropping the oldest beyond max.
func (p *Process) Record(s Step, max int) {
	if max <= 0 {
		p.TraceDropped++
		return
	}
	if len(p.Trace) >= max {
		n := len(p.Trace) - max + 1
		p.Trace = append(p.Trace[:0], p.Trace[n:]...)
		p.TraceDropped += uint32(n)
	}
	p.Trace = append(p.Trace, s)
}

// Limits bounds a Process: what Call accepts and what a decoder accepts
// from the wire. Zero fields take the DefaultLimits value.
type Limits struct {
	MaxEntries int // entries in one Process (default 1024)
	MaxDepth   int // nested calls below the root (default 64)
	MaxBytes   int // one input or output (default 1 MiB)
	MaxCont    int // one continuation (default 64 KiB)
	MaxName    int // a target, kind or origin name (default 128)
	MaxMsg     int // an error message (default 4 KiB)
	MaxTrace   int // trace steps kept (default 256)
	MaxTotal   int // one encoded Process (default 16 MiB)
	MaxBlobs   int // rows of the blob table (default 256)
}

// DefaultLimits are the limits every node enforces unless configured.
var DefaultLimits = Limits{
	MaxEntries: 1024,
	MaxDepth:   64,
	MaxBytes:   1 << 20,
	MaxCont:    64 << 10,
	MaxName:    128,
	MaxMsg:     4 << 10,
	MaxTrace:   256,
	MaxTotal:   16 << 20,
	MaxBlobs:   256,
}

func (l Limits) orDefault() Limits {
	d := DefaultLimits
	pick := func(v, def int) int {
		if v > 0 {
			return v
		}
		return def
	}
	return Limits{
		MaxEntries: pick(l.MaxEntries, d.MaxEntries),
		MaxDepth:   pick(l.MaxDepth, d.MaxDepth),
		MaxBytes:   pick(l.MaxBytes, d.MaxBytes),
		MaxCont:    pick(l.MaxCont, d.MaxCont),
		MaxName:    pick(l.MaxName, d.MaxName),
		MaxMsg:     pick(l.MaxMsg, d.MaxMsg),
		MaxTrace:   pick(l.MaxTrace, d.MaxTrace),
		MaxTotal:   pick(l.MaxTotal, d.MaxTotal),
		MaxBlobs:   pick(l.MaxBlobs, d.MaxBlobs),
	}
}

// Validate checks the structural invariants a decoded Process must hold:
// entries exist, parents come before children, exactly the active entry's
// chain is unfinished (the active entry Ready, its ancestors Waiting), every
// other entry is finished, and a set trace context has non-zero IDs.
func (p *Process) Validate() error {
	if err := p.TraceContext.valid(); err != nil {
		return err
	}
	n := int32(len(p.Entries))
	if n == 0 {
		return errors.New("lp: process has no entries")
	}
	if p.Entries[0].Parent != NoEntry {
		return errors.New("lp: root entry has a parent")
	}
	if p.Active < NoEntry || p.Active >= n {
		return fmt.Errorf("lp: active entry %d out of range [0,%d)", p.Active, n)
	}
	// Parents first: the chain walk below relies on them pointing backwards
	// (a forward or self parent would index out of range or loop forever).
	for i := int32(1); i < n; i++ {
		if e := &p.Entries[i]; e.Parent < 0 || e.Parent >= i {
			return fmt.Errorf("lp: entry %d has parent %d, want one in [0,%d)", i, e.Parent, i)
		}
	}
	onChain := make([]bool, n)
	for i := p.Active; i != NoEntry; i = p.Entries[i].Parent {
		onChain[i] = true
	}
	for i := int32(0); i < n; i++ {
		e := &p.Entries[i]
		if e.Target == "" || e.Kind == "" {
			return fmt.Errorf("lp: entry %d has an empty target or kind", i)
		}
		switch {
		case i == p.Active:
			if e.State != StateReady {
				return fmt.Errorf("lp: active entry %d is %s, want ready", i, e.State)
			}
		case onChain[i]:
			if e.State != StateWaiting {
				return fmt.Errorf("lp: entry %d calls the active entry but is %s, want waiting", i, e.State)
			}
		default:
			if !e.State.Finished() {
				return fmt.Errorf("lp: entry %d is %s but is not on the active chain", i, e.State)
			}
		}
		if e.State == StateFailed && e.ErrCode == 0 {
			return fmt.Errorf("lp: entry %d failed with code 0", i)
		}
		if e.InputRef && len(e.Input) != RefLen || e.OutputRef && len(e.Output) != RefLen {
			return fmt.Errorf("lp: entry %d holds a reference that is not %d bytes", i, RefLen)
		}
		if e.OutputRef && e.State != StateDone {
			return fmt.Errorf("lp: entry %d is %s but holds an output reference", i, e.State)
		}
	}
	for i := range p.Blobs {
		if p.Blobs[i].Holder == "" {
			return fmt.Errorf("lp: blob %d (%s) names no holder", i, p.Blobs[i].Ref)
		}
	}
	return nil
}
