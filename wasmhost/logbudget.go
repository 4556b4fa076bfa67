package wasmhost

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// LogLimits bound what guests may write to the node's log, through the log
// host function and WASI stdout and stderr together. A record costs its
// bytes plus recordOverhead, so a flood of empty lines is bounded too. What
// goes over is dropped and counted; the first drop is said once, and the
// count when output is let through again (or, for a guest that keeps
// flooding, every summaryEvery).
type LogLimits struct {
	// PerStep is the most one step may write (default 64 KiB).
	PerStep int
	// PerSecond and Burst are a token bucket per component: on average at
	// most PerSecond bytes a second, at most Burst at once (defaults 256 KiB
	// and 1 MiB).
	PerSecond, Burst int
}

var defaultLogLimits = LogLimits{PerStep: 64 << 10, PerSecond: 256 << 10, Burst: 1 << 20}

// recordOverhead is what a record costs beyond its text: the attributes and
// framing a log line carries.
const recordOverhead = 128

// summaryEvery is how often, at most, a component's drops are said.
const summaryEvery = 10 * time.Second

// logBudget is one component's token bucket and drop count.
type logBudget struct {
	mu       sync.Mutex
	tokens   float64
	last     time.Time
	dropped  int64 // records dropped and not yet said
	droppedB int64
	lastSaid time.Time // when drops were last said; zero: never
}

// logBudgets are the runtime's budgets by component, and its totals.
type logBudgets struct {
	limits  LogLimits
	mu      sync.Mutex
	by      map[string]*logBudget
	records atomic.Int64 // dropped, all time
	bytes   atomic.Int64
}

func (b *logBudgets) get(component string, lim LogLimits) *logBudget {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.by == nil {
		b.by = map[string]*logBudget{}
	}
	lb, ok := b.by[component]
	if !ok {
		lb = &logBudget{tokens: float64(lim.Burst), last: time.Now()}
		b.by[component] = lb
	}
	return lb
}

// LogDropped returns how many guest log records, and bytes, were dropped
// over the log limits since the runtime started.
func (r *Runtime) LogDropped() (records, bytes int64) {
	return r.logs.records.Load(), r.logs.bytes.Load()
}

// guestLog writes one guest record if the step's and the component's
// budgets allow it, else counts it. A component's drops are said at most
// once every summaryEvery: the first at once, later ones with their counts.
func (in *instance) guestLog(level slog.Level, msg string, attrs ...slog.Attr) {
	log := in.m.rt.cfg.logger
	ctx := context.Background()
	if !log.Enabled(ctx, level) {
		return
	}
	cost := len(msg) + recordOverhead
	component := in.st.component
	if component == "" {
		component = "module " + in.m.hash.Short() // output of _initialize
	}
	budgets := &in.m.rt.logs
	lim := budgets.limits
	if lim.PerStep <= 0 {
		lim = defaultLogLimits
	}
	lb := budgets.get(component, lim)
	now := time.Now()

	lb.mu.Lock()
	lb.tokens = min(float64(lim.Burst), lb.tokens+now.Sub(lb.last).Seconds()*float64(lim.PerSecond))
	lb.last = now
	stepOK := in.st.logBytes+cost <= lim.PerStep
	ok := stepOK && lb.tokens >= float64(cost)
	if ok {
		lb.tokens -= float64(cost)
		in.st.logBytes += cost
	} else {
		lb.dropped++
		lb.droppedB += int64(len(msg))
		budgets.records.Add(1)
		budgets.bytes.Add(int64(len(msg)))
	}
	var say []slog.Attr
	if lb.dropped > 0 && (lb.lastSaid.IsZero() || now.Sub(lb.lastSaid) >= summaryEvery) {
		say = []slog.Attr{slog.String("component", component),
			slog.Int64("dropped_records", lb.dropped), slog.Int64("dropped_bytes", lb.droppedB),
			slog.Int("per_step_bytes", lim.PerStep), slog.Int("per_second_bytes", lim.PerSecond)}
		if !lb.lastSaid.IsZero() {
			say = append(say, slog.Duration("since", now.Sub(lb.lastSaid).Round(time.Millisecond)))
		}
		lb.dropped, lb.droppedB, lb.lastSaid = 0, 0, now
	}
	lb.mu.Unlock()

	if say != nil {
		log.LogAttrs(ctx, slog.LevelWarn, "wasmhost: guest log output over its limits is dropped and counted; said again at most every 10s", say...)
	}
	if ok {
		log.LogAttrs(ctx, level, msg, attrs...)
	}
}
