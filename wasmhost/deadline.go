package wasmhost

import (
	"context"
	"errors"
	"sync/atomic"
	"time"
)

// stepCtx is the context a step runs under. Each pooled instance owns one
// and reuses it for every step, so a step costs no context allocation: its
// timer is Reset and Stopped rather than created, and its done channel is
// only ever closed once (when the step is stopped), after which the instance
// is retired. The host functions find their instance through it (ctx is
// passed to them unchanged by wazero), which is why it holds a back pointer.
//
// wazero (WithCloseOnContextDone) watches Done from another goroutine and
// stops the guest when it closes. That goroutine may outlive the step, so
// Done and Err only read fields that are written once, before done closes.
type stepCtx struct {
	in       *instance
	parent   context.Context // the caller's context for this step
	deadline time.Time       // the earlier of the step deadline and the parent's
	byParent bool            // deadline is the parent's

	done       chan struct{} // closed once, by fire
	state      atomic.Uint32 // ctxIdle, ctxRunning or ctxFired
	err        error         // why done closed; written before close(done)
	timer      *time.Timer   // fires fireTimeout; created stopped
	stopParent func() bool   // from context.AfterFunc when parent is cancelable
}

const (
	ctxIdle uint32 = iota
	ctxRunning
	ctxFired
)

func (s *stepCtx) init(in *instance) {
	s.in = in
	s.parent = context.Background()
	s.done = make(chan struct{})
	s.timer = time.AfterFunc(time.Hour, s.fireTimeout)
	s.timer.Stop()
}

// begin arms the deadline for one step under parent.
func (s *stepCtx) begin(parent context.Context, timeout time.Duration) {
	s.parent = parent
	s.deadline, s.byParent = time.Now().Add(timeout), false
	if d, ok := parent.Deadline(); ok && d.Before(s.deadline) {
		s.deadline, s.byParent = d, true
	}
	s.state.Store(ctxRunning)
	s.timer.Reset(time.Until(s.deadline))
	if parent.Done() != nil {
		// Only cancellation needs this: the parent's deadline is already in
		// the timer. It allocates, so callers that never cancel pay nothing.
		s.stopParent = context.AfterFunc(parent, s.fireParent)
	}
}

// end disarms the deadline. fired reports whether it stopped the step,
// and why is then the reason (context.DeadlineExceeded or the parent's
// error). reuse is false when a timer callback may still be in flight: such
// an instance must be retired, so that the late callback cannot stop a later
// step.
func (s *stepCtx) end() (fired bool, why error, reuse bool) {
	reuse = s.timer.Stop()
	if s.stopParent != nil {
		reuse = s.stopParent() && reuse
		s.stopParent = nil
	}
	parent := s.parent
	s.parent = context.Background()
	if s.state.CompareAndSwap(ctxRunning, ctxIdle) {
		return false, nil, reuse
	}
	<-s.done // fire won the race; wait until it has recorded why
	if s.err == errParentDone {
		return true, parent.Err(), false
	}
	return true, s.err, false
}

// errParentDone marks a stop caused by the parent context. Err reports it
// as context.Canceled, the value wazero needs to close the module; end
// reads the parent's real error on the step's own goroutine.
var errParentDone = errors.New("wasmhost: parent context done")

func (s *stepCtx) fireTimeout() { s.fire(context.DeadlineExceeded) }

func (s *stepCtx) fireParent() { s.fire(errParentDone) }

func (s *stepCtx) fire(err error) {
	if s.state.CompareAndSwap(ctxRunning, ctxFired) {
		s.err = err
		close(s.done)
	}
}

func (s *stepCtx) Deadline() (time.Time, bool) { return s.deadline, true }

func (s *stepCtx) Done() <-chan struct{} { return s.done }

func (s *stepCtx) Err() error {
	select {
	case <-s.done:
		if s.err == errParentDone {
			return context.Canceled
		}
		return s.err
	default:
		return nil
	}
}

func (s *stepCtx) Value(key any) any { return s.parent.Value(key) }
