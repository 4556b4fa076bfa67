package evalharness

import (
	"fmt"
	"time"
)

// Goal is one of issue 15's goals, as this run measured it.
type Goal struct {
	Name string `json:"name"`
	Want string `json:"want"`
	Got  string `json:"got"`
	Met  bool   `json:"met"`
}

// find returns the point of system at nodes (ok false if not measured).
func find(pts []ScalePoint, system string, nodes int) (ScalePoint, bool) {
	for _, p := range pts {
		if p.System == system && p.Nodes == nodes {
			return p, true
		}
	}
	return ScalePoint{}, false
}

// goals judges the report against the goals; a goal whose
// scenario did not run is left out.
func goals(r *Report, c CPUConfig) []Goal {
	var gs []Goal
	ts := System{"tsubame", "p2c"}.String()
	one, ok1 := find(r.Scale, ts, 1)
	if four, ok := find(r.Scale, ts, 4); ok && ok1 {
		x := four.Mean() / one.Mean()
		gs = append(gs, Goal{"scale-out, 4 nodes vs 1 (all distinct)", ">= 3.6x", fmt.Sprintf("%.2fx", x), x >= 3.6})
	}
	if plain, ok := find(r.Scale, System{"nginx", "round-robin"}.String(), 1); ok && ok1 {
		x := one.Mean() / plain.Mean()
		gs = append(gs, Goal{"one node vs the plain server under the same limit", ">= 0.8x", fmt.Sprintf("%.2fx", x), x >= 0.8})
	}
	if ok1 {
		ideal := 2.25 * one.Mean()
		var best ScalePoint
		for _, p := range r.Hetero {
			if len(p.System) > 7 && p.System[:7] == "tsubame" && p.Mean() > best.Mean() {
				best = p
			}
		}
		if best.System != "" {
			x := best.Mean() / ideal
			gs = append(gs, Goal{"heterogeneous: vs the sum of capacities (" + best.System + ")", ">= 0.90",
				fmt.Sprintf("%.2f (%.0f of %.0f req/s)", x, best.Mean(), ideal), x >= 0.9})
			if rr, ok := find(r.Hetero, System{"nginx", "round-robin"}.String(), 3); ok {
				y := best.Mean() / rr.Mean()
				gs = append(gs, Goal{"heterogeneous: vs nginx round-robin", ">= 1.3x", fmt.Sprintf("%.2fx", y), y >= 1.3})
			}
		}
	}
	for _, run := range r.Join {
		if run.System != ts {
			continue
		}
		s := run.Summary
		within := s.Back >= 0 && s.Back <= 2*time.Second
		gs = append(gs, Goal{"join: new plateau within 2 s", "<= 2s", fmt.Sprintf("%s (%.0f -> %.0f req/s)", fmtBack(s.Back), s.MeanBefore, s.MeanAfter), within})
		low := s.Low / s.MeanBefore
		gs = append(gs, Goal{"join: no interval below 0.9x the plateau before", ">= 0.90", fmt.Sprintf("%.2f", low), low >= 0.9})
	}
	for _, run := range r.Kill {
		s := run.Summary
		if run.System != ts {
			gs = append(gs, Goal{"kill: " + run.System + " (baseline, reported)", "-", fmt.Sprintf("%d failed", run.Failed), true})
			continue
		}
		gs = append(gs, Goal{"kill: zero failed requests", "0", fmt.Sprint(run.Failed), run.Failed == 0})
		share := float64(run.Nodes-1) / float64(run.Nodes)
		low := s.Low / s.MeanBefore
		gs = append(gs, Goal{"kill: drop no deeper than the node's share", fmt.Sprintf(">= %.2f", share), fmt.Sprintf("%.2f", low), low >= share})
		gs = append(gs, Goal{"kill: back within 3 s", "<= 3s", fmtBack(s.Back), s.Back >= 0 && s.Back <= 3*time.Second})
	}
	return gs
}

func fmtBack(d time.Duration) string {
	if d < 0 {
		return "never"
	}
	return d.Round(10 * time.Millisecond).String()
}
