package main

// The paper's evaluation as `tsubame bench` scenarios: flags and printing
// only; internal/evalharness runs them. docs/evaluation.md explains what is
// modelled and why, and records the figures.

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/tsubame-rt/tsubame/internal/evalharness"
	"github.com/tsubame-rt/tsubame/internal/loadgen"
)

func init() {
	registerBench(benchScenario{"paper-scaleout", "the paper's scale-out: time to render N formulas on 1, 2, 3, 4 nodes", benchPaperScaleout})
	registerBench(benchScenario{"paper-join", "the paper's node addition: requests/s over time as a node joins mid-run", benchPaperJoin})
	registerBench(benchScenario{"paper-stop", "the paper's node stop: requests/s over time as a node crashes mid-run", benchPaperStop})
}

// paperFlags are the flags every paper scenario shares.
type paperFlags struct {
	o       evalharness.Options
	verbose bool
}

func (p *paperFlags) register(fs *flag.FlagSet, attempt, hold time.Duration) {
	fs.IntVar(&p.o.Workers, "workers", 4, "workers per node (1 to 64): with --hold, a node's capacity is workers / hold")
	fs.DurationVar(&p.o.Hold, "hold", hold, "MODELLED capacity: how long a render holds its worker (0 to 500ms; 0: real CPU)")
	fs.IntVar(&p.o.Concurrency, "concurrency", 64, "concurrent clients (1 to 1024)")
	fs.IntVar(&p.o.Distinct, "distinct", 0, "draw formulas at random from this many (0: every request a new formula, all cache misses)")
	fs.Uint64Var(&p.o.Seed, "seed", 1, "seed of the formulas")
	fs.DurationVar(&p.o.Attempt, "attempt-timeout", attempt, "the gateway's resend timeout")
	fs.DurationVar(&p.o.Interval, "interval", 250*time.Millisecond, "sampling interval (50ms to 10s)")
	fs.BoolVar(&p.verbose, "verbose", false, "print the cluster's warnings to stderr")
}

// parse parses args into fs's flags; it prints the problem and returns
// false when they are bad.
func (p *paperFlags) parse(fs *flag.FlagSet, args []string, stderr io.Writer) bool {
	fs.SetOutput(stderr)
	if err := fs.Parse(args); err != nil {
		return false
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "%s: unexpected argument %q\n", fs.Name(), fs.Arg(0))
		return false
	}
	if err := p.o.Check(); err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", fs.Name(), err)
		return false
	}
	if p.verbose {
		p.o.Log = stderr
	}
	if exe, err := os.Executable(); err == nil {
		p.o.Binary = exe
	}
	return true
}

func benchPaperScaleout(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("tsubame bench paper-scaleout", flag.ContinueOnError)
	var p paperFlags
	p.register(fs, 2*time.Second, 20*time.Millisecond)
	nodesFlag := fs.String("nodes", "1,2,3,4", "comma-separated cluster `sizes`, each a fresh cluster (1 to 16)")
	requests := fs.Int("requests", 2000, "requests per cluster size (1 to 100000)")
	if !p.parse(fs, args, stderr) {
		return 2
	}
	sizes, err := parseSizes(*nodesFlag)
	if err != nil || *requests < 1 || *requests > 100000 {
		fmt.Fprintf(stderr, "tsubame bench paper-scaleout: --nodes %q --requests %d: want sizes 1 to 16 and 1 to 100000 requests\n", *nodesFlag, *requests)
		return 2
	}
	rows, err := evalharness.Scaleout(ctx, p.o, sizes, *requests, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "tsubame bench paper-scaleout:", err)
		return 1
	}
	fmt.Fprintf(stdout, "paper scale-out: %d requests per size, %s\n", *requests, p.o.Describe())
	printScaleout(stdout, stderr, p.o, rows)
	for _, r := range rows {
		if r.Failed > 0 {
			return 1
		}
	}
	return 0
}

func printScaleout(stdout, stderr io.Writer, o evalharness.Options, rows []evalharness.ScaleRow) {
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "nodes\ttime\treq/s\tspeedup vs 1st\tideal\tmodel time\tp50\tp99\tfailed\tresent\tcache hits\trender step\trenders per node\t")
	for _, r := range rows {
		model, render := "-", "-"
		if r.Model != nil {
			model = r.ModelTime(o).Round(time.Millisecond).String()
			render = r.Model.MeanRender().Round(time.Microsecond).String()
		}
		fmt.Fprintf(tw, "%d\t%s\t%.0f\t%.2f\t%.2f\t%s\t%s\t%s\t%d\t%d\t%d\t%s\t%s\t\n", r.Nodes,
			r.Elapsed.Round(time.Millisecond), r.PerSecond(),
			rows[0].Elapsed.Seconds()/r.Elapsed.Seconds(), float64(r.Nodes)/float64(rows[0].Nodes),
			model, r.P50.Round(time.Millisecond), r.P99.Round(time.Millisecond),
			r.Failed, r.Resent, r.Hits, render, perNode(r.RendersOn))
		if r.FirstErr != "" {
			fmt.Fprintf(stderr, "%d node(s): first failure: %s\n", r.Nodes, r.FirstErr)
		}
		if r.Model != nil && r.Model.Short() > 0 {
			fmt.Fprintf(stderr, "%d node(s): %d renders took longer than --hold by themselves (the CPU, not the model, bounded them)\n", r.Nodes, r.Model.Short())
		}
	}
	tw.Flush()
}

func parseSizes(s string) ([]int, error) {
	var sizes []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 || n > 16 {
			return nil, fmt.Errorf("bad size %q", f)
		}
		sizes = append(sizes, n)
	}
	return sizes, nil
}

// perNode formats counts by node name, in name order.
func perNode(m map[string]int) string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	slices.SortFunc(names, func(a, b string) int { return nodeNumber(a) - nodeNumber(b) })
	var b strings.Builder
	for i, n := range names {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%s:%d", n, m[n])
	}
	return b.String()
}

// nodeNumber is N of "node-N" (for ordering).
func nodeNumber(name string) int {
	n, _ := strconv.Atoi(strings.TrimPrefix(name, "node-"))
	return n
}

// printSeries writes a series as a table: one row per interval, with the
// renders each node did in it and the events that happened in it.
func printSeries(w io.Writer, s *loadgen.Series) {
	cols := s.TagNames()
	events := s.Events()
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "t (s)\treq/s\tp50 ms\tp99 ms\tfailed\tresent\t%s\tlag ms\t\tevent\n", strings.Join(cols, "\t"))
	for _, x := range s.Samples() {
		from := x.End - s.Interval()
		var what []string
		for _, e := range events {
			if e.At >= from && e.At < x.End {
				what = append(what, fmt.Sprintf("%s at %.2fs", e.What, e.At.Seconds()))
			}
		}
		fmt.Fprintf(tw, "%.2f\t%.0f\t%.1f\t%.1f\t%d\t%d\t", x.End.Seconds(), x.PerSecond,
			float64(x.P50)/1e6, float64(x.P99)/1e6, x.Errors, x.Resent)
		for _, c := range cols {
			fmt.Fprintf(tw, "%d\t", x.Tags[c])
		}
		fmt.Fprintf(tw, "%d\t\t%s\n", x.Lag.Milliseconds(), strings.Join(what, "; "))
	}
	tw.Flush()
}

// timelineFlags are the join and stop scenarios' own flags.
type timelineFlags struct {
	t              evalharness.Timeline
	mode, modeFlag string
	modes          []string
}

func (a *timelineFlags) register(fs *flag.FlagSet, nodes int, mode, usage string, modes ...string) {
	fs.IntVar(&a.t.Nodes, "nodes", nodes, "nodes at the start (1 to 16)")
	fs.DurationVar(&a.t.Before, "before", 5*time.Second, "measured load before the change")
	fs.DurationVar(&a.t.After, "after", 6*time.Second, "measured load once the change is done (the node ready, or gone)")
	fs.StringVar(&a.mode, mode, modes[0], usage)
	a.modeFlag, a.modes = mode, modes
}

// parse parses and checks a join or stop scenario's flags; it prints the
// problem and returns false when they are bad.
func (a *timelineFlags) parse(fs *flag.FlagSet, p *paperFlags, args []string, stderr io.Writer) bool {
	if !p.parse(fs, args, stderr) {
		return false
	}
	if !slices.Contains(a.modes, a.mode) {
		fmt.Fprintf(stderr, "%s: --%s %q: want one of %s\n", fs.Name(), a.modeFlag, a.mode, strings.Join(a.modes, ", "))
		return false
	}
	a.t.InProcess = a.mode == a.modes[0]
	fmt.Fprintf(stderr, "starting %d node(s)...\n", a.t.Nodes)
	return true
}

// seriesExit reports a series' first failure and returns the exit code.
func seriesExit(s *loadgen.Series, stderr io.Writer) int {
	if s.FirstErr() == "" {
		return 0
	}
	fmt.Fprintln(stderr, "first failure:", s.FirstErr())
	return 1
}

func benchPaperJoin(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("tsubame bench paper-join", flag.ContinueOnError)
	var p paperFlags
	p.register(fs, 2*time.Second, 20*time.Millisecond)
	var a timelineFlags
	a.register(fs, 2, "boot", "where the joining node runs: \"inprocess\" (this one, modelled like the others) "+
		"or \"process\" (its own `tsubame node`, on real CPU: needs --hold 0)", "inprocess", "process")
	if !a.parse(fs, &p, args, stderr) {
		return 2
	}
	rep, err := evalharness.Join(ctx, p.o, a.t)
	if err != nil {
		fmt.Fprintln(stderr, "tsubame bench paper-join:", err)
		return 1
	}
	s := rep.Series
	fmt.Fprintf(stdout, "paper node addition: %d node(s), one more (--boot %s) joins at %s; %s\n", rep.Nodes, a.mode, a.t.Before, p.o.Describe())
	printSeries(stdout, s)
	ok, failed, resent := s.Totals()
	fmt.Fprintf(stdout, "\n%s: start called at %.2fs, ready (every member sees it) at %.2fs, first render in the interval from %.2fs\n",
		rep.Added, rep.Begun.Seconds(), rep.Ready.Seconds(), rep.FirstOnNew.Seconds())
	fmt.Fprintf(stdout, "mean req/s before the join: %.0f; after (from ready + 1s): %.0f = %.2fx (ideal %.2fx)\n",
		rep.MeanBefore, rep.MeanAfter, rep.MeanAfter/rep.MeanBefore, float64(rep.Nodes+1)/float64(rep.Nodes))
	fmt.Fprintf(stdout, "lowest interval from the start to 1s after ready: %.0f req/s = %.2fx the mean before (worst timer lag %s); "+
		"in as long a window just before the start: %.0f = %.2fx (%s)\n",
		rep.LowAround, rep.LowAround/rep.MeanBefore, rep.LagAround.Round(time.Millisecond),
		rep.LowControl, rep.LowControl/rep.MeanBefore, rep.LagControl.Round(time.Millisecond))
	fmt.Fprintf(stdout, "requests: %d answered correctly, %d failed, %d answered by a resend\n", ok, failed, resent)
	return seriesExit(s, stderr)
}

func benchPaperStop(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("tsubame bench paper-stop", flag.ContinueOnError)
	var p paperFlags
	p.register(fs, time.Second, 20*time.Millisecond)
	var a timelineFlags
	a.register(fs, 4, "crash", "how the node stops: \"close\" (a node of this process, Node.Close, modelled like the others) "+
		"or \"kill\" (its own `tsubame node`, SIGKILL, on real CPU: needs --hold 0)", "close", "kill")
	if !a.parse(fs, &p, args, stderr) {
		return 2
	}
	rep, err := evalharness.Stop(ctx, p.o, a.t)
	if err != nil {
		fmt.Fprintln(stderr, "tsubame bench paper-stop:", err)
		return 1
	}
	s := rep.Series
	fmt.Fprintf(stdout, "paper node stop: %d nodes, one crashes (--crash %s) at %s; %s\n", rep.Nodes, a.mode, a.t.Before, p.o.Describe())
	printSeries(stdout, s)
	ok, failed, resent := s.Totals()
	fmt.Fprintf(stdout, "\n%s: crashed at %.2fs (gone at %.2fs), no longer a candidate at the gateway at %.2fs, last render it returned at %.2fs\n",
		rep.Stopped, rep.At.Seconds(), rep.Gone.Seconds(), rep.Dropped.Seconds(), rep.LastOnStopped.Seconds())
	fmt.Fprintf(stdout, "mean req/s before the crash: %.0f; after (from crash + %s): %.0f = %.2fx (one node's share gone: %.2fx)\n",
		rep.MeanBefore, rep.Settle, rep.MeanAfter, rep.MeanAfter/rep.MeanBefore, float64(rep.Nodes-1)/float64(rep.Nodes))
	fmt.Fprintf(stdout, "lowest interval in the %s after the crash: %.0f req/s = %.2fx the mean after (worst timer lag %s); "+
		"in the %s before it: %.0f = %.2fx the mean before (%s)\n",
		rep.Settle, rep.LowAround, rep.LowAround/rep.MeanAfter, rep.LagAround.Round(time.Millisecond),
		rep.Settle, rep.LowControl, rep.LowControl/rep.MeanBefore, rep.LagControl.Round(time.Millisecond))
	fmt.Fprintf(stdout, "requests: %d answered correctly, %d failed, %d answered by a resend (gateway resends: %d)\n",
		ok, failed, resent, rep.Resends)
	return seriesExit(s, stderr)
}
