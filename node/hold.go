package node

import (
	"context"
	"time"

	"github.com/tsubame-rt/tsubame/lp"
)

// holdStep asks Options.Hold after each step how much longer the step's
// worker stays busy, and waits that out without using a core: a modelled
// capacity, explicit in the node's options rather than hidden in a log line.
type holdStep struct {
	stepper
	hold func(component string, took time.Duration) time.Duration
}

func (h holdStep) Step(ctx context.Context, p *lp.Process) (lp.Step, error) {
	component := ""
	if e := p.ActiveEntry(); e != nil {
		component = e.Target
	}
	start := time.Now()
	st, err := h.stepper.Step(ctx, p)
	if err != nil {
		return st, err
	}
	if rest := h.hold(component, time.Since(start)); rest > 0 {
		t := time.NewTimer(rest)
		defer t.Stop()
		select { // a node that stops cancels the wait
		case <-t.C:
		case <-ctx.Done():
		}
	}
	return st, nil
}
