package sched

import (
	"math"
	"sync"
	"testing"
)

func count(t *testing.T, p Policy, cands []Candidate, n int) []int {
	t.Helper()
	got := make([]int, len(cands))
	for range n {
		i := p.Pick(cands)
		if i < 0 || i >= len(cands) {
			t.Fatalf("Pick returned %d for %d candidates", i, len(cands))
		}
		got[i]++
	}
	return got
}

func seeded(t *testing.T, name string) Policy {
	t.Helper()
	p, err := NewSeeded(name, 42)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestNewUnknown(t *testing.T) {
	if _, err := New("fastest"); err == nil {
		t.Fatal("New accepted an unknown policy")
	}
	for _, n := range Names {
		if _, err := New(n); err != nil {
			t.Errorf("New(%q): %v", n, err)
		}
	}
}

func TestEmptyAndSingle(t *testing.T) {
	for _, n := range Names {
		p := seeded(t, n)
		if i := p.Pick(nil); i != -1 {
			t.Errorf("%s: Pick(nil) = %d, want -1", n, i)
		}
		if i := p.Pick([]Candidate{{Name: "a", Load: 5}}); i != 0 {
			t.Errorf("%s: Pick(one) = %d, want 0", n, i)
		}
	}
}

// Weighted-random draws in proportion to spare capacity: equal idle nodes
// share evenly; a node with four times the workers gets about four times the
// work; a saturated node still gets a trickle.
func TestWeightedRandomProportions(t *testing.T) {
	const n = 40000
	p := seeded(t, WeightedRandom)
	cands := []Candidate{{Name: "big", Workers: 4}, {Name: "small", Workers: 1}, {Name: "busy", Workers: 4, Load: 2}}
	got := count(t, p, cands, n)
	var total float64
	for _, c := range cands {
		total += Weight(c)
	}
	for i, c := range cands {
		want := Weight(c) / total * n
		// 5 standard deviations of a binomial, at least 1% of n.
		tol := math.Max(5*math.Sqrt(want*(1-want/n)), 0.01*n)
		if math.Abs(float64(got[i])-want) > tol {
			t.Errorf("%s: %d picks, want %.0f ± %.0f", c.Name, got[i], want, tol)
		}
	}
	if got[0] < 3*got[1] {
		t.Errorf("big (4 workers) got %d picks, small (1 worker) %d: want about 4x", got[0], got[1])
	}
	if got[2] == 0 {
		t.Error("a saturated node is never picked; it should keep a small weight")
	}
}

// In-flight LPs count against a candidate until its next report.
func TestWeightedRandomInFlight(t *testing.T) {
	p := seeded(t, WeightedRandom)
	got := count(t, p, []Candidate{{Name: "a", Workers: 2, InFlight: 2}, {Name: "b", Workers: 2}}, 10000)
	if got[0]*5 > got[1] {
		t.Errorf("a with 2 LPs in flight on 2 workers got %d picks vs idle b %d", got[0], got[1])
	}
}

// P2C never picks the most loaded of n>=2 candidates, and picks the least
// loaded of three equally-sized ones about 2/3 of the time (it is in the
// drawn pair with probability 2/3 and then always wins).
func TestP2C(t *testing.T) {
	const n = 30000
	p := seeded(t, P2C)
	cands := []Candidate{{Name: "a", Load: 0.9}, {Name: "b", Load: 0.1}, {Name: "c", Load: 0.5}}
	got := count(t, p, cands, n)
	if got[0] != 0 {
		t.Errorf("the most loaded candidate was picked %d times", got[0])
	}
	if f := float64(got[1]) / n; math.Abs(f-2.0/3) > 0.03 {
		t.Errorf("least loaded picked %.3f of the time, want about 0.667", f)
	}
	if f := float64(got[2]) / n; math.Abs(f-1.0/3) > 0.03 {
		t.Errorf("middle picked %.3f of the time, want about 0.333", f)
	}
	// Two candidates: the lower effective load always wins, in-flight included.
	two := []Candidate{{Name: "a", Load: 0.2, InFlight: 3, Workers: 2}, {Name: "b", Load: 1.0, Workers: 2}}
	got = count(t, p, two, 1000)
	if got[1] != 1000 {
		t.Errorf("a (effective 1.7) beat b (effective 1.0) %d times", got[0])
	}
}

func TestRoundRobin(t *testing.T) {
	p := seeded(t, RoundRobin)
	cands := []Candidate{{Name: "a", Load: 9}, {Name: "b"}, {Name: "c"}}
	for i := range 9 {
		if got := p.Pick(cands); got != i%3 {
			t.Fatalf("pick %d = %d, want %d", i, got, i%3)
		}
	}
}

// Policies are used by every worker at once.
func TestConcurrentPicks(t *testing.T) {
	cands := []Candidate{{Name: "a"}, {Name: "b", Load: 0.5}, {Name: "c", Load: 1.5}}
	for _, name := range Names {
		for _, p := range []Policy{seeded(t, name), func() Policy { p, _ := New(name); return p }()} {
			var wg sync.WaitGroup
			for range 4 {
				wg.Go(func() {
					for range 1000 {
						if i := p.Pick(cands); i < 0 || i > 2 {
							t.Errorf("%s: Pick = %d", name, i)
							return
						}
					}
				})
			}
			wg.Wait()
		}
	}
}
