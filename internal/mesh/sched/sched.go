// Package sched holds the scheduler policies: given the live holders of a
// component and their load, pick the one that runs an LP's next step.
//
// A policy only chooses. It never measures load, never talks to other nodes
// and never keeps per-LP state; the node feeds it fresh candidates every time.
// Policies are safe for concurrent use.
package sched

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
)

// Candidate is one node that could run the next step.
type Candidate struct {
	Name string
	// Load is the node's last reported one-dimensional load: 0 idle, 1 every
	// worker busy, above 1 work is queueing.
	Load float64
	// InFlight counts the LPs this node has sent the candidate since its load
	// report was taken: work the report cannot show yet.
	InFlight int
	// Workers is the candidate's worker count, its capacity. Zero is read as 1.
	Workers int
}

// Effective is the load the candidate will have once the LPs in flight to it
// land: Load + InFlight/Workers.
func (c Candidate) Effective() float64 {
	return c.Load + float64(c.InFlight)/float64(c.workers())
}

func (c Candidate) workers() int {
	if c.Workers < 1 {
		return 1
	}
	return c.Workers
}

// Policy picks one candidate. Pick returns an index into cands, or -1 when
// cands is empty.
type Policy interface {
	Pick(cands []Candidate) int
}

// Policy names, as written in the node config.
const (
	WeightedRandom = "weighted-random"
	P2C            = "p2c"
	RoundRobin     = "round-robin"
)

// Names lists every policy New accepts.
var Names = []string{WeightedRandom, P2C, RoundRobin}

// New returns the named policy, drawing randomness from the runtime's
// goroutine-safe generator.
func New(name string) (Policy, error) {
	return newPolicy(name, rand.IntN, rand.Float64)
}

// NewSeeded returns the named policy drawing from a PCG generator seeded with
// seed, so tests can check a policy's choices deterministically.
func NewSeeded(name string, seed uint64) (Policy, error) {
	r := &lockedRand{r: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
	return newPolicy(name, r.IntN, r.Float64)
}

func newPolicy(name string, intN func(int) int, float func() float64) (Policy, error) {
	switch name {
	case WeightedRandom:
		return &weightedRandom{float: float}, nil
	case P2C:
		return &p2c{intN: intN}, nil
	case RoundRobin:
		return &roundRobin{}, nil
	}
	return nil, fmt.Errorf("unknown scheduler policy %q (want one of %q)", name, Names)
}

// lockedRand makes a seeded generator safe for concurrent Picks.
type lockedRand struct {
	mu sync.Mutex
	r  *rand.Rand
}

func (l *lockedRand) IntN(n int) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.r.IntN(n)
}

func (l *lockedRand) Float64() float64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.r.Float64()
}

// minSpare keeps a saturated node selectable: all reports may be stale by the
// time an LP lands, and a weight of zero everywhere would divide by zero.
const minSpare = 0.05

// weightedRandom is the paper's policy: a random holder, each weighted by its
// spare capacity, Workers * max(minSpare, 1 - Effective). Spare capacity
// rather than 1/load so that a node with four times the workers draws four
// times the work at equal load, and an idle node is not infinitely favoured.
type weightedRandom struct{ float func() float64 }

// Weight is the weight weighted-random gives c.
func Weight(c Candidate) float64 {
	spare := 1 - c.Effective()
	if spare < minSpare {
		spare = minSpare
	}
	return float64(c.workers()) * spare
}

func (w *weightedRandom) Pick(cands []Candidate) int {
	switch len(cands) {
	case 0:
		return -1
	case 1:
		return 0
	}
	var total float64
	for _, c := range cands {
		total += Weight(c)
	}
	x := w.float() * total
	for i, c := range cands {
		x -= Weight(c)
		if x < 0 {
			return i
		}
	}
	return len(cands) - 1 // rounding left x at ~0
}

// p2c is the power of two choices: two distinct random candidates, the one
// with the lower effective load wins (ties to the one with more workers, then
// the first drawn).
type p2c struct{ intN func(int) int }

func (p *p2c) Pick(cands []Candidate) int {
	switch len(cands) {
	case 0:
		return -1
	case 1:
		return 0
	}
	i := p.intN(len(cands))
	j := p.intN(len(cands) - 1)
	if j >= i {
		j++
	}
	a, b := cands[i], cands[j]
	ea, eb := a.Effective(), b.Effective()
	if eb < ea || (eb == ea && b.workers() > a.workers()) {
		return j
	}
	return i
}

// roundRobin ignores load: the baseline the others are measured against.
type roundRobin struct{ next atomic.Uint64 }

func (r *roundRobin) Pick(cands []Candidate) int {
	if len(cands) == 0 {
		return -1
	}
	return int((r.next.Add(1) - 1) % uint64(len(cands)))
}

var (
	_ Policy = (*weightedRandom)(nil)
	_ Policy = (*p2c)(nil)
	_ Policy = (*roundRobin)(nil)
)
