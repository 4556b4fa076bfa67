package node

import (
	"context"
	"testing"
	"time"

	"github.com/tsubame-rt/tsubame/lp"
)

type countStep struct{ n int }

func (s *countStep) Step(context.Context, *lp.Process) (lp.Step, error) {
	s.n++
	return lp.Step{}, nil
}
func (s *countStep) Holds(string) bool { return true }

// TestHoldStep: the hold is asked with the component the step ran, after
// the step; a hold is cut short when the step's context ends.
func TestHoldStep(t *testing.T) {
	inner := &countStep{}
	var asked []string
	h := holdStep{inner, func(component string, took time.Duration) time.Duration {
		if inner.n != 1 {
			t.Errorf("hold asked before the step ran")
		}
		asked = append(asked, component)
		return time.Hour
	}}
	p := &lp.Process{Entries: []lp.Entry{{Parent: lp.NoEntry, Target: "logic", Kind: "render"}}, Active: 0}
	ctx, cancel := context.WithCancel(t.Context())
	cancel() // the hour must not be waited out
	if _, err := h.Step(ctx, p); err != nil {
		t.Fatal(err)
	}
	if len(asked) != 1 || asked[0] != "logic" {
		t.Fatalf("hold asked for %q, want [logic]", asked)
	}
}
