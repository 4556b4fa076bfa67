package tsubame

import "strconv"

// Seq is the active entry as a sequential-style handler sees it. The
// handler runs from the top on every step of its entry: Call returns the
// recorded result of each call the handler already made, and the first call
// without one ends the step (the SDK unwinds the handler with a panic and
// recovers it). So:
//
//   - a handler must make the same calls in the same order on every run,
//     given its input and the results it has seen; the SDK checks this and
//     fails the entry with code 3 "nondeterministic replay at call N"
//     (N counts from 0) when it does not;
//   - a handler must not recover panics it did not cause: a recover that
//     swallows the SDK's fails the entry with code 3. Any other panic is
//     re-raised and traps the step (code 1).
//
// The handler's result is the reply. A returned error fails the entry: an
// *Error (also wrapped with %w) with its code, so returning a child's error
// forwards its failure; any other error with CodeError (500).
//
// Slices Seq returns are valid until the step ends.
type Seq struct {
	c        *Ctx
	cont     []byte // the checked continuation
	recorded int    // calls recorded in cont, = finished calls
	n        int    // calls made by this run of the handler
	pending  bool   // end the step with out, whatever the handler does next
	kvAt     int    // the n last told to the host by kv_after; -1: none yet
	out      Outcome
	contBuf  []byte
}

// suspend is what Call panics with to unwind the handler; a pointer, so the
// panic allocates nothing.
var suspend = &Error{Code: CodeABIViolation, Msg: "tsubame: Seq suspend (do not recover this panic)"}

// Kind returns the request kind.
func (s *Seq) Kind() string { return s.c.Kind() }

// Input returns the request's input.
func (s *Seq) Input() []byte { return s.c.Input() }

// Call asks component target for kind with input and returns its reply, or
// an *Error with its failure code and message.
func (s *Seq) Call(target, kind string, input []byte) ([]byte, error) {
	if s.pending {
		panic(suspend)
	}
	i, fp := s.n, Fingerprint(target, kind, input)
	if i < s.recorded {
		if seqFingerprint(s.cont, i) != fp {
			s.end(s.c.Fail(CodeABIViolation, "nondeterministic replay at call "+strconv.Itoa(i)))
		}
		s.n++
		return s.c.Child(i)
	}
	s.contBuf = appendSeq(s.contBuf[:0], s.cont, i, fp)
	s.end(s.c.Call(target, kind, input, s.contBuf))
	panic("unreachable")
}

// end makes o the step's outcome and unwinds the handler.
func (s *Seq) end(o Outcome) {
	s.pending, s.out = true, o
	panic(suspend)
}

// run runs one step of h.
func (s *Seq) run(c *Ctx, h SeqHandler) Outcome {
	*s = Seq{c: c, contBuf: s.contBuf, kvAt: -1}
	var ok bool
	s.recorded, ok = seqCalls(c.Cont(), c.Calls())
	if !ok {
		return c.Fail(CodeABIViolation, "tsubame: malformed sequential continuation ("+
			strconv.Itoa(len(c.Cont()))+" bytes after "+strconv.Itoa(c.Calls())+" calls)")
	}
	s.cont = c.Cont()
	out, err, unwound := s.call(h)
	switch {
	case unwound:
		return s.out
	case s.pending:
		return c.Fail(CodeABIViolation, "tsubame: the handler recovered the panic of Seq.Call; let it through")
	case s.n < s.recorded:
		return c.Fail(CodeABIViolation, "nondeterministic replay at call "+strconv.Itoa(s.n))
	case err != nil:
		return c.FailErr(err)
	}
	return c.Reply(out)
}

// call runs h, recovering the SDK's own panic only.
func (s *Seq) call(h SeqHandler) (out []byte, err error, unwound bool) {
	defer func() {
		if !s.pending {
			return // a panic of the handler's own goes on with its stack intact
		}
		switch r := recover(); r {
		case suspend:
			unwound = true
		case nil: // the handler recovered the SDK's panic and returned
		default:
			panic(r)
		}
	}()
	out, err = h(s)
	return out, err, false
}

// drop forgets the step's slices so they can be collected; contBuf is kept.
func (s *Seq) drop() { *s = Seq{contBuf: s.contBuf} }
