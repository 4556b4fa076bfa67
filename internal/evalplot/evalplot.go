// Package evalplot draws the real-CPU evaluation's figures (the paper's
// Figs. 6, 7 and 8, each with the nginx baseline on the same axes) from an
// evalharness.Report, as SVG and PNG, with gonum/plot.
//
// It never measures anything: it draws what the report holds.
package evalplot

import (
	"fmt"
	"image/color"
	"path/filepath"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/tsubame-rt/tsubame/internal/evalharness"
)

// Write draws every figure the report has data for into dir, as
// NAME.svg and NAME.png, and returns the files written.
func Write(r *evalharness.Report, dir string) ([]string, error) {
	var files []string
	figs := []struct {
		name string
		make func(*evalharness.Report) (*plot.Plot, bool)
	}{
		{"fig6-scaleout", scaleout},
		{"fig7-join", func(r *evalharness.Report) (*plot.Plot, bool) {
			return timeline(r, r.Join, "join", "Fig. 7: a node joins")
		}},
		{"fig8-kill", func(r *evalharness.Report) (*plot.Plot, bool) {
			return timeline(r, r.Kill, "kill", "Fig. 8: a node is killed (SIGKILL)")
		}},
	}
	for _, f := range figs {
		p, ok := f.make(r)
		if !ok {
			continue
		}
		for _, ext := range []string{"svg", "png"} {
			path := filepath.Join(dir, f.name+"."+ext)
			if err := p.Save(7*vg.Inch, 4.5*vg.Inch, path); err != nil {
				return files, fmt.Errorf("evalplot: %w", err)
			}
			files = append(files, path)
		}
	}
	return files, nil
}

// errPoints are means with their standard deviations.
type errPoints struct {
	plotter.XYs
	plotter.YErrors
}

// scaleout is Fig. 6: requests/s against node count, one line per system,
// error bars of one standard deviation over the repetitions.
func scaleout(r *evalharness.Report) (*plot.Plot, bool) {
	if len(r.Scale) == 0 {
		return nil, false
	}
	p := plot.New()
	p.Title.Text = fmt.Sprintf("Fig. 6: scale-out, every node at %.2f CPU (all formulas distinct)", r.CPUs)
	p.X.Label.Text = "nodes"
	p.Y.Label.Text = "renders/s (mean ± sd)"
	p.Legend.Top, p.Legend.Left = true, true
	var order []string
	by := map[string][]evalharness.ScalePoint{}
	for _, pt := range r.Scale {
		if _, ok := by[pt.System]; !ok {
			order = append(order, pt.System)
		}
		by[pt.System] = append(by[pt.System], pt)
	}
	for i, sys := range order {
		pts := by[sys]
		ep := errPoints{make(plotter.XYs, len(pts)), make(plotter.YErrors, len(pts))}
		for k, pt := range pts {
			ep.XYs[k] = plotter.XY{X: float64(pt.Nodes), Y: pt.Mean()}
			ep.YErrors[k] = struct{ Low, High float64 }{pt.Std(), pt.Std()}
		}
		line, points, err := plotter.NewLinePoints(ep.XYs)
		if err != nil {
			return nil, false
		}
		style(line, points, i)
		bars, err := plotter.NewYErrorBars(ep)
		if err != nil {
			return nil, false
		}
		bars.Color = plotutil.Color(i)
		p.Add(line, points, bars)
		p.Legend.Add(sys, line, points)
	}
	p.Y.Min = 0
	p.Add(plotter.NewGrid())
	return p, true
}

func style(line *plotter.Line, points *plotter.Scatter, i int) {
	line.Color = plotutil.Color(i)
	line.Dashes = plotutil.Dashes(i)
	line.Width = vg.Points(1.5)
	if points != nil {
		points.Color = plotutil.Color(i)
		points.Shape = plotutil.Shape(i)
	}
}

// The marks of a change: its start dotted, its end (the node serving, or
// dead) in long dashes.
var (
	dotted   = []vg.Length{vg.Points(2), vg.Points(2)}
	longDash = []vg.Length{vg.Points(8), vg.Points(4)}
)

// timeline is Fig. 7 or 8: requests/s per sample against time, one line
// per system, the change marked by a vertical line per system.
func timeline(r *evalharness.Report, runs []evalharness.TimelineRun, what, title string) (*plot.Plot, bool) {
	if len(runs) == 0 {
		return nil, false
	}
	p := plot.New()
	p.Title.Text = fmt.Sprintf("%s (%d nodes at %.2f CPU at the start)", title, runs[0].Nodes, r.CPUs)
	p.X.Label.Text = "time (s)"
	p.Y.Label.Text = "requests/s per 250 ms sample"
	p.Legend.Top = true
	ymax := 0.0
	for _, run := range runs {
		for _, x := range run.Series.Samples() {
			ymax = max(ymax, x.PerSecond)
		}
	}
	for i, run := range runs {
		samples := run.Series.Samples()
		xys := make(plotter.XYs, len(samples))
		for k, x := range samples {
			xys[k] = plotter.XY{X: x.End.Seconds(), Y: x.PerSecond}
		}
		line, err := plotter.NewLine(xys)
		if err != nil {
			return nil, false
		}
		style(line, nil, i)
		p.Add(line)
		label := run.System
		if run.Failed > 0 {
			label += fmt.Sprintf(" (%d failed)", run.Failed)
		}
		p.Legend.Add(label, line)
		for _, m := range []struct {
			at     float64
			dashes []vg.Length
		}{{run.At.Seconds(), dotted}, {run.Done.Seconds(), longDash}} {
			mark, err := plotter.NewLine(plotter.XYs{{X: m.at, Y: 0}, {X: m.at, Y: ymax * 1.05}})
			if err != nil {
				return nil, false
			}
			mark.Color, mark.Dashes = plotutil.Color(i), m.dashes
			p.Add(mark)
		}
	}
	done := "the node serves"
	if what == "kill" {
		done = "the node is dead"
	}
	for _, l := range []struct {
		label  string
		dashes []vg.Length
	}{{what + " begins", dotted}, {done, longDash}} {
		p.Legend.Add(l.label, &plotter.Line{LineStyle: draw.LineStyle{Color: color.Gray{Y: 100}, Width: vg.Points(1), Dashes: l.dashes}})
	}
	p.Y.Min = 0
	p.Add(plotter.NewGrid())
	return p, true
}
