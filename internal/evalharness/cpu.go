package evalharness

import (
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/tsubame-rt/tsubame/internal/loadgen"
)

// CPUConfig is what the real-CPU evaluation runs: every node (and every
// baseline server) a process of its own under a CPU limit; the gateway,
// nginx and the load generator outside the limits.
type CPUConfig struct {
	// CPUs is a full node's CPU limit (a fraction of one core).
	CPUs float64
	// Sizes are the scale-out's node counts; Reps the runs per size.
	Sizes []int
	Reps  int
	// Requests is one scale-out run's request count.
	Requests int
	// Before and After frame the join and the kill.
	Before, After time.Duration
	// JoinNodes and KillNodes are the members at the start.
	JoinNodes, KillNodes int
	// Policies are Tsubame's scheduler policies compared on the
	// heterogeneous cluster.
	Policies []string
}

// Report is everything the real-CPU evaluation measured, as written to
// JSON and plotted.
type Report struct {
	Started   time.Time `json:"started"`
	Isolation string    `json:"isolation"`
	Machine   string    `json:"machine"`
	Load      string    `json:"load_at_start"`
	LoadEnd   string    `json:"load_at_end"`
	Options   string    `json:"options"`
	CPUs      float64   `json:"cpus_per_node"`
	// Scale is the scale-out: every system at every size (Fig. 6); Small
	// the same with formulas drawn from a small set.
	Scale []ScalePoint `json:"scale"`
	Small []ScalePoint `json:"small_set"`
	// Hetero is the heterogeneous cluster (one node at a quarter of the
	// others' CPU); Split has cache and logic on different nodes.
	Hetero []ScalePoint `json:"hetero"`
	Split  []ScalePoint `json:"split"`
	// Join and Kill are the timelines (Figs. 7 and 8).
	Join []TimelineRun `json:"join"`
	Kill []TimelineRun `json:"kill"`
	// Goals are the goals, each met or missed.
	Goals []Goal `json:"goals"`
}

// ScalePoint is one system at one layout: the rate of each repetition.
type ScalePoint struct {
	System   string    `json:"system"`
	Nodes    int       `json:"nodes"`
	Rates    []float64 `json:"rates"` // correct answers per second, per run
	Failed   int       `json:"failed"`
	FirstErr string    `json:"first_error,omitempty"`
	// Hops is node-to-node migrations per request (Tsubame only).
	Hops float64 `json:"hops_per_request"`
}

// Mean and Std are of the repetitions' rates.
func (p ScalePoint) Mean() float64 { m, _ := meanStd(p.Rates); return m }
func (p ScalePoint) Std() float64  { _, s := meanStd(p.Rates); return s }

func meanStd(xs []float64) (mean, std float64) {
	if len(xs) == 0 {
		return 0, 0
	}
	for _, x := range xs {
		mean += x
	}
	mean /= float64(len(xs))
	if len(xs) < 2 {
		return mean, 0
	}
	for _, x := range xs {
		std += (x - mean) * (x - mean)
	}
	return mean, math.Sqrt(std / float64(len(xs)-1))
}

// TimelineRun is one system's join or kill timeline.
type TimelineRun struct {
	System  string          `json:"system"`
	Nodes   int             `json:"nodes"`
	Member  string          `json:"member"` // the one that joined or was killed
	At      time.Duration   `json:"at_ns"`  // the change began
	Done    time.Duration   `json:"done_ns"`
	Series  *loadgen.Series `json:"series"`
	Failed  int             `json:"failed"`
	Summary Change          `json:"summary"`
}

// Change is what a timeline shows about its change.
type Change struct {
	MeanBefore float64 `json:"mean_before"`
	MeanAfter  float64 `json:"mean_after"`
	// Low is the lowest interval from the change to the end; Back is how
	// long after Done the series first reached 0.9x MeanAfter and stayed
	// above Low thereafter.
	Low  float64       `json:"low"`
	Back time.Duration `json:"back_ns"`
}

func summarize(s *loadgen.Series, at, done, settle time.Duration) Change {
	iv := s.Interval()
	at = at.Truncate(iv)
	var c Change
	c.MeanBefore, _ = s.Rate(0, at)
	c.MeanAfter, _ = s.Rate(done+settle, s.End())
	_, c.Low = s.Rate(at, s.End())
	c.Back = -1
	for _, x := range s.Samples() {
		if x.End-iv >= done && x.PerSecond >= 0.9*c.MeanAfter {
			c.Back = x.End - done
			break
		}
	}
	return c
}

// RunCPU runs the whole real-CPU evaluation and returns its report.
// Scenarios that need nginx are left out (and said so on progress) when
// it is not installed.
func RunCPU(ctx context.Context, o Options, c CPUConfig, progress io.Writer) (*Report, error) {
	if err := o.Check(); err != nil {
		return nil, err
	}
	if o.Isolation.None() {
		return nil, fmt.Errorf("no CPU isolation (%s): refusing to report scale-out on shared cores", o.Isolation.Why)
	}
	if o.Hold > 0 {
		return nil, fmt.Errorf("a real-CPU run takes no modelled hold")
	}
	rep := &Report{Started: time.Now(), Isolation: o.Isolation.String(), Machine: machine(), Load: loadavg(),
		Options: o.Describe(), CPUs: c.CPUs}
	systems := []System{{"tsubame", "p2c"}}
	if _, err := NginxBinary(); err == nil {
		systems = append(systems, System{"nginx", "round-robin"}, System{"nginx", "least_conn"})
	} else {
		fmt.Fprintln(progress, "no nginx baseline:", err)
	}
	say := func(f string, a ...any) { fmt.Fprintf(progress, f+"\n", a...) }
	var err error
	say("isolation: %s", rep.Isolation)
	if rep.Scale, err = scaleCPU(ctx, o, c, systems, say); err != nil {
		return rep, err
	}
	small := o
	small.Distinct = 50
	if rep.Small, err = scaleCPU(ctx, small, CPUConfig{CPUs: c.CPUs, Sizes: []int{1, c.Sizes[len(c.Sizes)-1]}, Reps: 1, Requests: c.Requests}, systems[:1], say); err != nil {
		return rep, err
	}
	hetero := Layout{CPUs: []float64{c.CPUs, c.CPUs, c.CPUs / 4}}
	var hsys []System
	for _, p := range c.Policies {
		hsys = append(hsys, System{"tsubame", p})
	}
	hsys = append(hsys, systems[1:]...)
	for _, sys := range hsys {
		say("heterogeneous: %s on %v CPUs", sys, hetero.CPUs)
		pt, err := throughputCPU(ctx, o, sys, hetero, 1, c.Requests)
		if err != nil {
			return rep, err
		}
		rep.Hetero = append(rep.Hetero, pt)
	}
	for _, n := range []int{2, 4} {
		say("split placement: %d nodes, cache and logic apart", n)
		pt, err := throughputCPU(ctx, o, System{"tsubame", "p2c"}, Layout{CPUs: repeat(c.CPUs, n), Split: true}, 1, c.Requests)
		if err != nil {
			return rep, err
		}
		rep.Split = append(rep.Split, pt)
	}
	for _, sys := range systems[:min(2, len(systems))] {
		say("join: %s, %d nodes, one more at %s", sys, c.JoinNodes, c.Before)
		run, err := timelineCPU(ctx, o, sys, c, "join")
		if err != nil {
			return rep, err
		}
		rep.Join = append(rep.Join, run)
		say("kill: %s, %d nodes, SIGKILL one at %s", sys, c.KillNodes, c.Before)
		if run, err = timelineCPU(ctx, o, sys, c, "kill"); err != nil {
			return rep, err
		}
		rep.Kill = append(rep.Kill, run)
	}
	rep.LoadEnd = loadavg()
	rep.Goals = goals(rep, c)
	return rep, nil
}

func repeat(x float64, n int) []float64 {
	xs := make([]float64, n)
	for i := range xs {
		xs[i] = x
	}
	return xs
}

// scaleCPU measures every system at every size.
func scaleCPU(ctx context.Context, o Options, c CPUConfig, systems []System, say func(string, ...any)) ([]ScalePoint, error) {
	var pts []ScalePoint
	for _, sys := range systems {
		for _, n := range c.Sizes {
			say("scale-out: %s, %d node(s) at %.2f CPU, %d x %d requests (distinct %d)", sys, n, c.CPUs, c.Reps, c.Requests, o.Distinct)
			pt, err := throughputCPU(ctx, o, sys, Layout{CPUs: repeat(c.CPUs, n)}, c.Reps, c.Requests)
			if err != nil {
				return pts, err
			}
			pts = append(pts, pt)
		}
	}
	return pts, nil
}

// throughputCPU starts sys with layout and runs reps closed-loop runs of
// requests each (fresh formulas every run).
func throughputCPU(ctx context.Context, o Options, sys System, layout Layout, reps, requests int) (ScalePoint, error) {
	pt := ScalePoint{System: sys.String(), Nodes: len(layout.CPUs)}
	r, err := startSystem(ctx, o, sys, layout)
	if err != nil {
		return pt, err
	}
	defer r.stop()
	q := newRequests(o, r.URL())
	defer q.client.CloseIdleConnections()
	if err := q.warm(ctx, o.Concurrency); err != nil {
		return pt, err
	}
	q.hops.Store(0)
	q.traced.Store(0)
	o.label = fmt.Sprintf("%s x%d", sys, len(layout.CPUs))
	for rep := range reps {
		s, err := runRequests(ctx, o, q, rep*requests, requests)
		if err != nil {
			return pt, err
		}
		ok, failed, _ := s.Totals()
		pt.Rates = append(pt.Rates, float64(ok)/s.End().Seconds())
		pt.Failed += failed
		if pt.FirstErr == "" {
			pt.FirstErr = s.FirstErr()
		}
	}
	if n := q.traced.Load(); n > 0 {
		pt.Hops = float64(q.hops.Load()) / float64(n)
	}
	return pt, nil
}

// timelineCPU runs sys on c.JoinNodes (or c.KillNodes) full nodes and
// joins one more, or kills the last, at c.Before.
func timelineCPU(ctx context.Context, o Options, sys System, c CPUConfig, what string) (TimelineRun, error) {
	n := c.JoinNodes
	if what == "kill" {
		n = c.KillNodes
	}
	run := TimelineRun{System: sys.String(), Nodes: n}
	r, err := startSystem(ctx, o, sys, Layout{CPUs: repeat(c.CPUs, n)})
	if err != nil {
		return run, err
	}
	defer r.stop()
	o.label = fmt.Sprintf("%s %s", what, sys)
	s, err := timeline(ctx, o, r.URL(), Timeline{Before: c.Before, After: c.After}, func(s *loadgen.Series) error {
		run.At = s.Mark(what + " begins")
		if what == "join" {
			name, err := r.join(ctx, c.CPUs)
			run.Member = name
			run.Done = s.Mark(name + " serving")
			return err
		}
		run.Member = r.kill()
		run.Done = s.Mark(run.Member + " killed")
		return nil
	})
	run.Series = s
	if err != nil {
		return run, err
	}
	_, run.Failed, _ = s.Totals()
	settle := 2 * time.Second
	if what == "kill" {
		settle = SettleAfterStop(o)
	}
	run.Summary = summarize(s, run.At, run.Done, settle)
	return run, nil
}

// machine describes the machine the run shares.
func machine() string {
	return fmt.Sprintf("%s/%s, %d CPUs, GOMAXPROCS %d", runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.GOMAXPROCS(0))
}

// loadavg is the machine's load averages now (others' work shows here).
func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}
