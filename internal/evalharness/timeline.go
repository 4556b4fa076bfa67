package evalharness

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tsubame-rt/tsubame/internal/loadgen"
)

// Timeline is how a join or stop scenario runs: load for Before, the
// change, then load for After once the change is done.
type Timeline struct {
	Nodes         int // at the start
	Before, After time.Duration
	// InProcess puts the changing node in this process (joining with
	// democluster.AddNode, crashing with Node.Close); otherwise it runs in
	// a process of its own (`tsubame node`, killed with SIGKILL), where it
	// renders on real CPU: no modelled hold reaches it.
	InProcess bool
}

func (t Timeline) check(o Options, minNodes int) error {
	if err := o.Check(); err != nil {
		return err
	}
	iv := o.interval()
	switch {
	case t.Nodes < minNodes || t.Nodes > 16:
		return fmt.Errorf("nodes %d: want %d to 16", t.Nodes, minNodes)
	case t.Before < 2*iv || t.After < 4*iv || t.Before+t.After > 10*time.Minute:
		return fmt.Errorf("before %s, after %s: want at least 2 and 4 intervals, at most 10m in all", t.Before, t.After)
	case !t.InProcess && o.Hold > 0:
		return errors.New("a node in its own process renders on real CPU, which a modelled hold cannot reach: " +
			"model every node in this process (in-process join or crash) or use no hold")
	case !t.InProcess && o.Binary == "":
		return errors.New("a node in its own process needs the tsubame binary")
	}
	return nil
}

// timeline runs closed-loop load on c (after a warm-up), calls change at
// t.Before and goes on for t.After once change has returned (a node's
// start-up takes what it takes), and returns the series; change marks its
// own events.
func timeline(ctx context.Context, o Options, url string, t Timeline, change func(s *loadgen.Series) error) (*loadgen.Series, error) {
	q := newRequests(o, url)
	defer q.client.CloseIdleConnections()
	if err := q.warm(ctx, o.Concurrency); err != nil {
		return nil, err
	}
	lc := loadgen.Config{Concurrency: o.Concurrency, Interval: o.interval()}
	if o.Rate > 0 { // open loop: Concurrency bounds the requests in flight
		lc.Rate, lc.Concurrency = o.Rate, 0
	}
	g, err := loadgen.Start(ctx, lc, q.do)
	if err != nil {
		return nil, err
	}
	defer g.Stop()
	if o.Progress != nil {
		defer g.Progress(o.Progress, o.label)()
	}
	s := g.Series
	select {
	case <-time.After(t.Before):
		err = change(s)
	case <-ctx.Done():
	}
	if err == nil {
		select {
		case <-time.After(t.After):
		case <-ctx.Done():
		}
	}
	g.Stop()
	if err != nil {
		return s, err
	}
	return s, ctx.Err()
}

// JoinReport is what the join scenario measured.
type JoinReport struct {
	Series       *loadgen.Series
	Nodes        int
	Added        string
	Begun, Ready time.Duration // start called, the node seen by all
	FirstOnNew   time.Duration // the interval of its first render (-1: none)
	MeanBefore   float64
	MeanAfter    float64 // from Ready + 1s
	// The lowest interval from the start of the node to a second after it
	// is ready, and in a window as long just before (the same run's
	// baseline: this machine is shared, and busy neighbours make dips too).
	LowAround, LowControl float64
	LagAround, LagControl time.Duration // the worst timer lag in the same windows
}

// Join runs load on t.Nodes nodes and adds one at t.Before.
func Join(ctx context.Context, o Options, t Timeline) (JoinReport, error) {
	if err := t.check(o, 1); err != nil {
		return JoinReport{}, err
	}
	c, err := startCluster(ctx, o, t.Nodes)
	if err != nil {
		return JoinReport{}, err
	}
	defer c.stop()
	rep := JoinReport{Nodes: t.Nodes, FirstOnNew: -1}
	s, err := timeline(ctx, o, c.URL(), t, func(s *loadgen.Series) error {
		rep.Begun = s.Mark("node starting")
		if t.InProcess {
			nd, err := c.AddNode(ctx)
			if err != nil {
				return err
			}
			rep.Added = nd.Name()
		} else {
			rep.Added = fmt.Sprintf("node-%d", t.Nodes+1)
			if _, err := c.startNode(ctx, o, nodeSpec{name: rep.Added, components: appComponents, policy: o.Policy}); err != nil {
				return err
			}
		}
		rep.Ready = s.Mark(rep.Added + " ready")
		return nil
	})
	rep.Series = s
	if err != nil {
		return rep, err
	}
	iv := s.Interval()
	rep.FirstOnNew = s.FirstTag(rep.Added)
	settle := rep.Ready + time.Second
	begun := rep.Begun.Truncate(iv) // the interval it began in counts as after
	rep.MeanBefore, _ = s.Rate(0, begun)
	rep.MeanAfter, _ = s.Rate(settle, s.End())
	_, rep.LowAround = s.Rate(begun, settle)
	_, rep.LowControl = s.Rate(begun-(settle-begun), begun)
	rep.LagAround, rep.LagControl = s.MaxLag(begun, settle), s.MaxLag(begun-(settle-begun), begun)
	return rep, nil
}

// StopReport is what the stop scenario measured.
type StopReport struct {
	Series            *loadgen.Series
	Nodes             int
	Stopped           string
	At, Gone, Dropped time.Duration // crash begun, done; the gateway stopped listing it (-1: never)
	MeanBefore        float64
	MeanAfter         float64 // from At + Settle
	Settle            time.Duration
	LowAround         float64 // the lowest interval until the new steady state
	LowControl        float64 // ... and in as long a window before the crash
	LagAround         time.Duration
	LagControl        time.Duration // the worst timer lag in the same windows
	Resends           int64         // the gateway's resend counter over the run
	LastOnStopped     time.Duration
	LateOnStopped     int // renders by the stopped node answered over 1s after it was gone
}

// SettleAfterStop is how long after a crash the stop scenario waits before
// it measures the new steady state: the resend timeout plus failure
// detection's second.
func SettleAfterStop(o Options) time.Duration { return o.Attempt + time.Second }

// Stop runs load on t.Nodes nodes and crashes the last at t.Before.
func Stop(ctx context.Context, o Options, t Timeline) (StopReport, error) {
	if err := t.check(o, 2); err != nil {
		return StopReport{}, err
	}
	settle := SettleAfterStop(o)
	if t.After < settle+4*o.interval() || t.Before < settle {
		return StopReport{}, fmt.Errorf("before %s, after %s: want both at least the resend timeout + 1s (and after 4 intervals more)", t.Before, t.After)
	}
	inside := t.Nodes
	if !t.InProcess {
		inside--
	}
	c, err := startCluster(ctx, o, inside)
	if err != nil {
		return StopReport{}, err
	}
	defer c.stop()
	var proc *proc
	if !t.InProcess {
		if proc, err = c.startNode(ctx, o, nodeSpec{name: fmt.Sprintf("node-%d", t.Nodes), components: appComponents, policy: o.Policy}); err != nil {
			return StopReport{}, err
		}
	}
	rep := StopReport{Nodes: t.Nodes, Dropped: -1, Settle: settle}
	resends0, err := gatewayCounter(c.URL(), "resends")
	if err != nil {
		return rep, err
	}
	watch := make(chan struct{})
	dropped := make(chan time.Duration, 1)
	s, err := timeline(ctx, o, c.URL(), t, func(s *loadgen.Series) error {
		if t.InProcess {
			victim := c.Nodes[len(c.Nodes)-1]
			c.Nodes = c.Nodes[:len(c.Nodes)-1]
			rep.Stopped = victim.Name()
			rep.At = s.Mark(rep.Stopped + " closed")
			victim.Close() // Node.Close drops the LPs it holds, as a crash does
		} else {
			rep.Stopped = proc.name
			rep.At = s.Mark(rep.Stopped + " killed")
			proc.kill()
		}
		rep.Gone = s.Mark("gone")
		go func() { dropped <- c.waitDropped(rep.Stopped, s, watch) }()
		return nil
	})
	close(watch)
	if rep.Stopped != "" {
		rep.Dropped = <-dropped
	}
	rep.Series = s
	if err != nil {
		return rep, err
	}
	resends1, err := gatewayCounter(c.URL(), "resends")
	if err != nil {
		return rep, err
	}
	rep.Resends = resends1 - resends0
	rep.LastOnStopped, _ = s.LastTag(rep.Stopped)
	rep.LateOnStopped = s.TagsAfter(rep.Stopped, rep.Gone+time.Second+s.Interval())
	at := rep.At.Truncate(s.Interval()) // the interval of the crash counts as after
	rep.MeanBefore, _ = s.Rate(0, at)
	rep.MeanAfter, _ = s.Rate(at+settle, s.End())
	_, rep.LowAround = s.Rate(at, at+settle)
	_, rep.LowControl = s.Rate(at-settle, at)
	rep.LagAround, rep.LagControl = s.MaxLag(at, at+settle), s.MaxLag(at-settle, at)
	return rep, nil
}

// waitDropped polls until the gateway no longer lists name as a holder and
// returns when (on s's clock), or -1 if done closes first.
func (c *cluster) waitDropped(name string, s *loadgen.Series, done <-chan struct{}) time.Duration {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		if !slices.Contains(c.Gateway.Holders(Route.Component), name) {
			return s.Mark(name + " no longer a candidate at the gateway")
		}
		select {
		case <-done:
			return -1
		case <-t.C:
		}
	}
}

// gatewayCounter reads one counter of a gateway's GET /healthz.
func gatewayCounter(base, name string) (int64, error) {
	res, err := http.Get(base + "/healthz")
	if err != nil {
		return 0, fmt.Errorf("gateway health: %w", err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		return 0, fmt.Errorf("gateway health: %w", err)
	}
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			return strconv.ParseInt(v, 10, 64)
		}
	}
	return 0, errors.New("gateway health: no counter " + name)
}
