// Package engine is the in-process step loop: it maps component names to
// loaded modules, runs the active entry of a lightweight process for one
// step, applies the outcome to the process (reply, call or fail) and records
// the step in its trace. The node wraps it with rescheduling and migration;
// `tsubame exec` and tests use Run to drive a process to completion in one
// process.
//
// engine never migrates, queues or talks to other nodes, and it never
// decides where a process goes next: a call to a component it does not hold
// is the caller's to route (Step returns ErrNotHeld; Run fails the entry).
package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/tsubame-rt/tsubame/abi"
	"github.com/tsubame-rt/tsubame/lp"
	"github.com/tsubame-rt/tsubame/wasmhost"
)

// Options configures an Engine.
type Options struct {
	// Node names this node in trace steps.
	Node string
	// Limits bound the calls a step may make; zero fields take
	// lp.DefaultLimits. MaxTrace bounds the trace kept in each process.
	Limits lp.Limits
	// Logger receives step failures. Default slog.Default().
	Logger *slog.Logger
}

// Component is one installed component: its name and current version.
type Component struct {
	Name string
	Hash lp.Hash
	Size int
}

// codedError is a reason a step did not run, with the failure code an
// entry gets when the caller gives up on it (StepCode).
type codedError struct {
	msg  string
	code uint32
}

func (e *codedError) Error() string    { return e.msg }
func (e *codedError) StepCode() uint32 { return e.code }

var (
	// ErrNotHeld: the active entry's target is not installed here. Its
	// StepCode is abi.CodeNoComponent.
	ErrNotHeld error = &codedError{"engine: component not held here", abi.CodeNoComponent}
	// ErrVersionMissing: the active entry resumes a continuation saved by a
	// module version this node has not loaded. The caller may fetch that
	// version or fail the entry with its StepCode, abi.CodeVersionGone.
	ErrVersionMissing error = &codedError{"engine: module version not loaded here", abi.CodeVersionGone}
)

// Engine runs steps of processes on the components installed in it. It is
// safe for concurrent use; one Process must not be stepped concurrently.
type Engine struct {
	rt       *wasmhost.Runtime
	node     string
	limits   lp.Limits
	maxTrace int
	maxTotal int
	log      *slog.Logger

	mu    sync.RWMutex
	comps map[string]*wasmhost.Module
}

// New returns an Engine running modules of rt.
func New(rt *wasmhost.Runtime, o Options) *Engine {
	e := &Engine{rt: rt, node: o.Node, limits: o.Limits, maxTrace: o.Limits.MaxTrace, log: o.Logger,
		comps: map[string]*wasmhost.Module{}}
	if e.maxTrace <= 0 {
		e.maxTrace = lp.DefaultLimits.MaxTrace
	}
	if e.maxTotal = o.Limits.MaxTotal; e.maxTotal <= 0 {
		e.maxTotal = lp.DefaultLimits.MaxTotal
	}
	if e.log == nil {
		e.log = slog.Default()
	}
	return e
}

// Install makes m the current version of component name; new entries
// targeting name run in it. Entries suspended in the previous version keep
// resuming in that version (see Step).
func (e *Engine) Install(name string, m *wasmhost.Module) {
	e.mu.Lock()
	e.comps[name] = m
	e.mu.Unlock()
}

// Remove uninstalls component name. Its modules stay loaded in the runtime.
func (e *Engine) Remove(name string) {
	e.mu.Lock()
	delete(e.comps, name)
	e.mu.Unlock()
}

// Holds reports whether component name is installed.
func (e *Engine) Holds(name string) bool {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return e.comps[name] != nil
}

// Components lists the installed components by name.
func (e *Engine) Components() []Component {
	e.mu.RLock()
	out := make([]Component, 0, len(e.comps))
	for name, m := range e.comps {
		out = append(out, Component{Name: name, Hash: m.Hash(), Size: m.Size()})
	}
	e.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// module finds the module to run entry en in. A fresh entry (no Module hash
// yet) runs in its target's current version; an entry that already ran
// resumes in exactly the version that saved its continuation (ABI.md §7).
func (e *Engine) module(en *lp.Entry) (*wasmhost.Module, error) {
	if !en.Module.IsZero() {
		if m := e.rt.Module(en.Module); m != nil {
			return m, nil
		}
		return nil, fmt.Errorf("%w: %s version %s", ErrVersionMissing, en.Target, en.Module.Short())
	}
	e.mu.RLock()
	m := e.comps[en.Target]
	e.mu.RUnlock()
	if m == nil {
		return nil, fmt.Errorf("%w: %s", ErrNotHeld, en.Target)
	}
	return m, nil
}

// Step runs one step of p's active entry here, applies its outcome (reply,
// call or fail) to p, sets the entry's Module hash, and records the step in
// p's trace. A failure the host detected (trap, timeout, ABI violation,
// limit) is applied as the entry's failure and is not an error: the step
// ran. So is an outcome that would make p's encoding larger than
// Limits.MaxTotal: the entry fails with abi.CodeLimit instead, since a
// process that large could neither migrate nor return to its origin. An
// error means p is unchanged: lp.ErrFinished, ErrNotHeld,
// ErrVersionMissing, or wasmhost.ErrClosed. ctx bounds the step; callers put
// the process's own deadline on it.
func (e *Engine) Step(ctx context.Context, p *lp.Process) (lp.Step, error) {
	en := p.ActiveEntry()
	if en == nil {
		return lp.Step{}, lp.ErrFinished
	}
	m, err := e.module(en)
	if err != nil {
		return lp.Step{}, err
	}
	idx := p.Active
	start := time.Now()
	res, err := m.Step(ctx, en.Target, p)
	elapsed := time.Since(start)
	if res.Outcome == 0 {
		return lp.Step{}, fmt.Errorf("engine: step %s: %w", en.Target, err)
	}
	if err != nil {
		e.log.Warn("step failed", "node", e.node, "lp", p.ID, "entry", idx, "component", en.Target,
			"kind", en.Kind, "code", res.Code, "err", err)
	}
	en.Module = m.Hash()
	en.Steps++
	for _, b := range res.Blobs {
		p.AddBlob(b)
	}
	s := lp.Step{Node: e.node, Entry: idx, Micros: micros(elapsed), Start: start.UnixMicro()}
	if p.WireSize()+growth(&res, &s) <= e.maxTotal {
		s.Outcome = e.apply(p, &res) // the common case: it fits whatever it does
		p.Record(s, e.maxTrace)
		return s, nil
	}
	// Near the limit: apply the outcome to a copy and keep it if it fits.
	size := 0
	fits := func(change func(q *lp.Process)) bool {
		q := *p
		q.Entries = slices.Clone(p.Entries)
		q.Trace = slices.Clone(p.Trace) // Record shifts the trace in place
		q.Blobs = slices.Clone(p.Blobs) // CompactBlobs filters in place
		change(&q)
		if size = q.WireSize(); size > e.maxTotal {
			return false
		}
		*p = q
		return true
	}
	if fits(func(q *lp.Process) { s.Outcome = e.apply(q, &res); q.Record(s, e.maxTrace) }) {
		return s, nil
	}
	msg := fmt.Sprintf("%s would make the LP %d bytes, over its limit of %d (lp.Limits.MaxTotal)", res.Outcome, size, e.maxTotal)
	e.log.Warn("step failed", "node", e.node, "lp", p.ID, "entry", idx, "component", en.Target,
		"kind", en.Kind, "code", abi.CodeLimit, "err", msg)
	s.Outcome = lp.OutcomeFail
	if fits(func(q *lp.Process) { _ = q.Fail(abi.CodeLimit, msg); q.Record(s, e.maxTrace) }) {
		return s, nil
	}
	// Not even the failure's message fits (a small outcome on an LP at the
	// limit): fail with none and count the step as dropped from the trace,
	// which leaves the LP no larger than before the step, give or take a
	// varint byte.
	_ = p.Fail(abi.CodeLimit, "")
	p.Record(s, 0)
	return s, nil
}

// growth bounds how many bytes applying res and recording s can add to a
// process's encoding: the outcome's bytes plus a fixed allowance. The most
// the allowance must cover is a call: a new entry's hash, state and varints
// and its length prefixes (about 52 bytes), the caller's continuation
// prefix, the entry count and Active growing a byte each, a trace step's
// varints (about 15), and apply's own message when it refuses the call
// (under 100 bytes besides the names). Only the fast path relies on it.
func growth(res *wasmhost.Result, s *lp.Step) int {
	const fixed = 256
	return fixed + len(res.Output) + len(res.Target) + len(res.Kind) + len(res.Input) + len(res.Cont) +
		len(res.Msg) + len(s.Node)
}

// apply records res in p and returns the outcome that was applied: a call
// the process cannot take (too many entries, too deep) fails the entry
// instead.
func (e *Engine) apply(p *lp.Process, res *wasmhost.Result) lp.Outcome {
	switch res.Outcome {
	case lp.OutcomeReply:
		if res.OutputRef {
			ref, _ := lp.ParseRef(res.Output)
			_ = p.ReplyRef(ref)
		} else {
			_ = p.Reply(res.Output)
		}
		p.CompactBlobs()
	case lp.OutcomeCall:
		call := p.Call
		if res.InputRef {
			call = func(target, kind string, input, cont []byte, lim lp.Limits) error {
				ref, _ := lp.ParseRef(input)
				return p.CallRef(target, kind, ref, cont, lim)
			}
		}
		if err := call(res.Target, res.Kind, res.Input, res.Cont, e.limits); err != nil {
			code := uint32(abi.CodeABIViolation)
			var le *lp.LimitError
			if errors.As(err, &le) {
				code = abi.CodeLimit
			}
			_ = p.Fail(code, fmt.Sprintf("call %s/%s: %v", res.Target, res.Kind, err))
			p.CompactBlobs()
			return lp.OutcomeFail
		}
	default:
		_ = p.Fail(res.Code, res.Msg)
		p.CompactBlobs()
		return lp.OutcomeFail
	}
	return res.Outcome
}

func micros(d time.Duration) uint32 {
	return uint32(min(d.Microseconds(), math.MaxUint32))
}

// Run steps p here until its root entry finishes. A call to a component
// not installed here fails that entry with abi.CodeNoComponent (and a
// continuation whose module version is gone, with abi.CodeVersionGone), and
// the process goes on, so the caller sees the failure. p's Deadline, if set,
// bounds the whole run: once it passes, every remaining step fails at once
// with abi.CodeTimeout and the failure unwinds to the root. Run returns an
// error only if a step could not run for another reason.
func (e *Engine) Run(ctx context.Context, p *lp.Process) error {
	if p.Deadline != 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, time.Unix(0, p.Deadline))
		defer cancel()
	}
	// Each entry runs at most one step more than the calls it makes, and
	// each call adds an entry: 2*MaxEntries steps finish any process.
	maxEntries := e.limits.MaxEntries
	if maxEntries <= 0 {
		maxEntries = lp.DefaultLimits.MaxEntries
	}
	for n := 0; !p.Finished(); n++ {
		if n > 2*maxEntries+1 {
			return fmt.Errorf("engine: process %s did not finish in %d steps", p.ID, n)
		}
		idx := p.Active
		_, err := e.Step(ctx, p)
		var ce *codedError
		switch {
		case err == nil:
		case errors.As(err, &ce):
			_ = p.Fail(ce.code, err.Error())
			p.Record(lp.Step{Node: e.node, Entry: idx, Outcome: lp.OutcomeFail}, e.maxTrace)
		default:
			return err
		}
	}
	return nil
}
