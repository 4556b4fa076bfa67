package evalharness

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"sync"
	"time"

	"github.com/tsubame-rt/tsubame/internal/cpulimit"
	"github.com/tsubame-rt/tsubame/internal/democluster"
)

// Options are what every scenario shares.
type Options struct {
	// Workers per node (1 to 64).
	Workers int
	// Hold, if > 0, models a node's capacity as Workers / Hold (Model);
	// 0 lets renders take what the CPU gives them.
	Hold time.Duration
	// Concurrency is the number of closed-loop clients (1 to 1024).
	Concurrency int
	// Distinct, if > 0, draws formulas at random from this many; 0 makes
	// every request a new formula (all cache misses).
	Distinct int
	Seed     uint64
	// Attempt is the gateway's resend timeout.
	Attempt time.Duration
	// Policy is the scheduler policy of the gateway and of node processes
	// ("": p2c, the default).
	Policy string
	// Interval is the sample length of the timelines (default 250ms).
	Interval time.Duration
	// Log receives the cluster's warnings (nil: discarded).
	Log io.Writer
	// Binary is the tsubame executable that runs nodes in their own
	// processes (`tsubame node --config`); needed only by scenarios that
	// start one.
	Binary string
	// Rate, if > 0, makes the timelines open-loop: requests arrive at this
	// many per second whatever the answers take (a closed loop hides stalls:
	// its clients wait with the system).
	Rate float64
	// Progress, if set, gets a live progress line (a terminal).
	Progress io.Writer
	label    string // the progress line's label
	// Isolation limits the CPU of node processes (and baseline servers);
	// see internal/cpulimit.
	Isolation cpulimit.Isolation
}

// Check returns what is wrong with o, or nil.
func (o Options) Check() error {
	switch {
	case o.Workers < 1 || o.Workers > 64:
		return fmt.Errorf("workers %d: want 1 to 64", o.Workers)
	case o.Hold < 0 || o.Hold > 500*time.Millisecond:
		return fmt.Errorf("hold %s: want 0 to 500ms (a step may take at most 1s)", o.Hold)
	case o.Concurrency < 1 || o.Concurrency > 1024:
		return fmt.Errorf("concurrency %d: want 1 to 1024", o.Concurrency)
	case o.Distinct < 0 || o.Distinct > 1<<20:
		return fmt.Errorf("distinct %d: want 0 to %d", o.Distinct, 1<<20)
	case o.Attempt < 100*time.Millisecond || o.Attempt > time.Minute:
		return fmt.Errorf("attempt timeout %s: want 100ms to 1m", o.Attempt)
	case o.Rate < 0 || o.Rate > 1e5:
		return fmt.Errorf("rate %g: want 0 to 100000 per second", o.Rate)
	case o.Interval != 0 && (o.Interval < 50*time.Millisecond || o.Interval > 10*time.Second):
		return fmt.Errorf("interval %s: want 50ms to 10s", o.Interval)
	}
	return nil
}

func (o Options) interval() time.Duration {
	if o.Interval == 0 {
		return 250 * time.Millisecond
	}
	return o.Interval
}

// Describe is the first line of every report: the model's parameters.
func (o Options) Describe() string {
	set := "every request a new formula (all cache misses)"
	if o.Distinct > 0 {
		set = fmt.Sprintf("formulas drawn at random from %d", o.Distinct)
	}
	model := "renders take what the CPU gives them (no modelled capacity)"
	if o.Hold > 0 {
		model = fmt.Sprintf("MODELLED capacity: a render holds its worker %s (%.0f renders/s a node)", o.Hold, o.Capacity())
	}
	return fmt.Sprintf("%s; %d concurrent clients; each node: %d workers, %s; resend after %s; GOMAXPROCS %d",
		set, o.Concurrency, o.Workers, model, o.Attempt, runtime.GOMAXPROCS(0))
}

// Capacity is one node's modelled renders per second (0 without a hold).
func (o Options) Capacity() float64 {
	if o.Hold <= 0 {
		return 0
	}
	return float64(o.Workers) / o.Hold.Seconds()
}

// cluster is the app on an in-process cluster, plus the nodes a scenario
// started in processes of their own.
type cluster struct {
	*democluster.Cluster
	model *Model     // nil without a hold
	mu    sync.Mutex // guards procs and the CA while members start together
	procs []*proc
	dir   string // the node processes' files
}

// startCluster starts an in-process cluster of n nodes serving the app.
func startCluster(ctx context.Context, o Options, n int) (*cluster, error) {
	log := slog.New(slog.DiscardHandler)
	if o.Log != nil {
		log = slog.New(slog.NewTextHandler(o.Log, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	dir, err := os.MkdirTemp("", "tsubame-eval-")
	if err != nil {
		return nil, err
	}
	c := &cluster{dir: dir}
	dc := democluster.Config{Nodes: n, GatewayOnly: n == 0, HTTP: "127.0.0.1:0", Workers: o.Workers, App: &App,
		AttemptTimeout: o.Attempt, Logger: log, Policy: o.Policy}
	if o.Hold > 0 {
		c.model = NewModel(o.Hold)
		dc.Hold = c.model.Hold
	}
	d, err := democluster.Start(ctx, dc)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	c.Cluster = d
	return c, nil
}

// stop stops the cluster and every node process it started.
func (c *cluster) stop() {
	for _, p := range c.procs {
		p.stop()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = c.Shutdown(ctx)
	os.RemoveAll(c.dir)
}
