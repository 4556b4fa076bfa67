package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/tsubame-rt/tsubame/internal/cpulimit"
	"github.com/tsubame-rt/tsubame/internal/evalharness"
	"github.com/tsubame-rt/tsubame/internal/evalplot"
	"github.com/tsubame-rt/tsubame/internal/loadgen"
)

func init() {
	registerBench(benchScenario{"paper-cpu", "the paper's figures on real CPU (a cgroup per node) beside nginx: scale-out, heterogeneous, split, join, kill; JSON, CSV and plots", benchPaperCPU})
	registerBench(benchScenario{"paper-plot", "redraw the paper-cpu figures from a report.json", benchPaperPlot})
}

func benchPaperCPU(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("tsubame bench paper-cpu", flag.ContinueOnError)
	var p paperFlags
	p.register(fs, time.Second, 0)
	var c evalharness.CPUConfig
	fs.Float64Var(&c.CPUs, "cpus", 0.25, "a full node's CPU limit, in cores (0.01 to 4)")
	sizes := fs.String("sizes", "1,2,3,4", "scale-out node counts")
	fs.IntVar(&c.Reps, "reps", 3, "runs per scale-out size (error bars)")
	fs.IntVar(&c.Requests, "requests", 600, "requests per run")
	fs.DurationVar(&c.Before, "before", 5*time.Second, "load before a join or a kill")
	fs.DurationVar(&c.After, "after", 8*time.Second, "load after it")
	fs.IntVar(&c.JoinNodes, "join-nodes", 2, "nodes before the join")
	fs.IntVar(&c.KillNodes, "kill-nodes", 4, "nodes before the kill")
	policies := fs.String("policies", "p2c,weighted-random,round-robin", "Tsubame's policies on the heterogeneous cluster")
	fs.Float64Var(&p.o.Rate, "rate", 0, "open loop for the join and kill: requests arriving per second (0: closed loop)")
	out := fs.String("out", "", "write report.json, CSVs and the figures (SVG, PNG) into `dir`")
	if !p.parse(fs, args, stderr) {
		return 2
	}
	var err error
	if c.Sizes, err = parseSizes(*sizes); err != nil || c.CPUs < 0.01 || c.CPUs > 4 || c.Reps < 1 || c.Reps > 20 ||
		c.Requests < 10 || c.JoinNodes < 1 || c.KillNodes < 2 || p.o.Hold != 0 {
		fmt.Fprintln(stderr, "tsubame bench paper-cpu: want --cpus 0.01 to 4, sizes 1 to 16, 1 to 20 reps, 10+ requests, "+
			"--join-nodes 1+, --kill-nodes 2+ and --hold 0 (real CPU)")
		return 2
	}
	c.Policies = strings.Split(*policies, ",")
	p.o.Isolation = cpulimit.Detect("tsubame-eval")
	defer p.o.Isolation.Close()
	fmt.Fprintln(stderr, "CPU isolation:", p.o.Isolation)
	if p.o.Isolation.None() {
		fmt.Fprintln(stderr, "tsubame bench paper-cpu: refusing to report scale-out: with no CPU limit every node shares the machine's cores")
		return 1
	}
	// The gateway, nginx and the load generator: no quota, the same weight
	// against the machine's other work as the nodes.
	if _, err := p.o.Isolation.Unlimited("harness"); err != nil {
		fmt.Fprintln(stderr, "tsubame bench paper-cpu:", err)
		return 1
	}
	if loadgen.IsTerminal(stderr) {
		p.o.Progress = stderr
	}
	rep, err := evalharness.RunCPU(ctx, p.o, c, stderr)
	if rep != nil {
		printCPUReport(stdout, rep)
	}
	if err != nil {
		fmt.Fprintln(stderr, "tsubame bench paper-cpu:", err)
		return 1
	}
	if *out != "" {
		if code := writeCPUReport(rep, *out, stdout, stderr); code != 0 {
			return code
		}
	}
	if n := rep.WrongReplies(); n > 0 {
		fmt.Fprintf(stderr, "tsubame bench paper-cpu: %d requests were not answered correctly\n", n)
		return 1
	}
	return 0
}

func writeCPUReport(rep *evalharness.Report, dir string, stdout, stderr io.Writer) int {
	files, err := rep.Write(dir)
	if err == nil {
		var figs []string
		figs, err = evalplot.Write(rep, dir)
		files = append(files, figs...)
	}
	if err != nil {
		fmt.Fprintln(stderr, "tsubame bench paper-cpu:", err)
		return 1
	}
	fmt.Fprintf(stdout, "\nwrote %s\n", strings.Join(files, " "))
	return 0
}

// printCPUReport prints the tables of a real-CPU run and its goals.
func printCPUReport(w io.Writer, r *evalharness.Report) {
	fmt.Fprintf(w, "paper on real CPU: %s\nisolation: %s\nmachine: %s; load average %s at the start, %s at the end (other work on this machine shows here)\n",
		r.Options, r.Isolation, r.Machine, r.Load, r.LoadEnd)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	for _, set := range []struct {
		title string
		pts   []evalharness.ScalePoint
	}{{"scale-out (all distinct)", r.Scale}, {"small set (50 formulas)", r.Small},
		{fmt.Sprintf("heterogeneous (%.2f, %.2f, %.3f CPU)", r.CPUs, r.CPUs, r.CPUs/4), r.Hetero},
		{"cache and logic on different nodes", r.Split}} {
		fmt.Fprintf(tw, "\n%s\t\t\t\t\t\t\n", set.title)
		fmt.Fprintln(tw, "system\tnodes\treq/s mean\tsd\truns\tmigrations/req\tfailed\t")
		for _, p := range set.pts {
			fmt.Fprintf(tw, "%s\t%d\t%.0f\t%.0f\t%d\t%.2f\t%d\t\n", p.System, p.Nodes, p.Mean(), p.Std(), len(p.Rates), p.Hops, p.Failed)
		}
	}
	tw.Flush()
	for _, set := range []struct {
		what string
		runs []evalharness.TimelineRun
	}{{"join", r.Join}, {"kill", r.Kill}} {
		for _, run := range set.runs {
			s := run.Summary
			fmt.Fprintf(w, "\n%s, %s (%d nodes, %s at %.2fs, done %.2fs): %.0f -> %.0f req/s, lowest interval after %.0f, back %s, %d failed\n",
				set.what, run.System, run.Nodes, run.Member, run.At.Seconds(), run.Done.Seconds(),
				s.MeanBefore, s.MeanAfter, s.Low, durOrNever(s.Back), run.Failed)
			printSeries(w, run.Series)
		}
	}
	fmt.Fprintln(w, "\ngoals (issue 15), this run:")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, g := range r.Goals {
		met := "MISSED"
		if g.Met {
			met = "met"
		}
		fmt.Fprintf(tw, "  %s\twant %s\tgot %s\t%s\n", g.Name, g.Want, g.Got, met)
	}
	tw.Flush()
}

func durOrNever(d time.Duration) string {
	if d < 0 {
		return "never"
	}
	return d.Round(10 * time.Millisecond).String()
}

func benchPaperPlot(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("tsubame bench paper-plot", flag.ContinueOnError)
	fs.SetOutput(stderr)
	in := fs.String("report", "docs/figures/report.json", "the report `file` paper-cpu wrote")
	out := fs.String("out", "", "where the figures go (default: beside the report)")
	if err := fs.Parse(args); err != nil || fs.NArg() > 0 {
		return 2
	}
	rep, err := evalharness.ReadReport(*in)
	if err != nil {
		fmt.Fprintln(stderr, "tsubame bench paper-plot:", err)
		return 1
	}
	dir := *out
	if dir == "" {
		dir = filepath.Dir(*in)
	}
	files, err := evalplot.Write(rep, dir)
	if err != nil {
		fmt.Fprintln(stderr, "tsubame bench paper-plot:", err)
		return 1
	}
	fmt.Fprintln(stdout, strings.Join(files, "\n"))
	return 0
}
