package node

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/tsubame-rt/tsubame/internal/mesh/transport"
	"github.com/tsubame-rt/tsubame/internal/obs"
	"github.com/tsubame-rt/tsubame/lp"
)

// nodeObs is what a node records about the LPs it runs: Prometheus metrics,
// OpenTelemetry step spans (when tracing is on) and the ring of recent
// journeys. The runner calls it at a few points; a nil *nodeObs records
// nothing, and nothing here allocates per step with tracing off.
type nodeObs struct {
	name   string
	met    *obs.NodeMetrics
	ring   *obs.Ring
	tr     *obs.Tracer
	gather prometheus.Gatherer
}

// startObs sets up n's metrics (on o.Metrics, labelled with the node's
// name, when the program shares one registry among members; else on a
// registry of its own), its journey ring and its tracer.
func (n *Node) startObs(ctx context.Context, o Options) error {
	if o.NoObservability {
		return nil
	}
	var reg prometheus.Registerer
	var gather prometheus.Gatherer
	if o.Metrics != nil {
		reg, gather = prometheus.WrapRegistererWith(prometheus.Labels{"member": n.cfg.Name}, o.Metrics), o.Metrics
	} else {
		r := obs.NewRegistry()
		reg, gather = r, r
	}
	tr, err := obs.NewTracer(ctx, n.cfg.Name, "node", n.cfg.Tracing, o.SpanExporter)
	if err != nil {
		return err
	}
	ob := &nodeObs{name: n.cfg.Name, ring: obs.NewRing(n.cfg.Name, 0), tr: tr, gather: gather}
	// The gauges are read at scrape time; the runner and the cluster are
	// made after this (the admin API, the only scraper, starts after both).
	run := func(f func(r *runner) float64) func() float64 {
		return func() float64 {
			if s := n.serving.Load(); s != nil {
				return f(s.run)
			}
			return 0
		}
	}
	ob.met = obs.NewNodeMetrics(reg, obs.NodeGauges{
		Queue:   run(func(r *runner) float64 { return float64(r.q.len()) }),
		Running: run(func(r *runner) float64 { return float64(r.running.Load()) }),
		Load:    run((*runner).load),
		Members: run(func(*runner) float64 { return float64(len(n.cl.Members())) }),
		Workers: n.cfg.Workers,
		Pools:   n.poolStats,
	})
	n.obs = ob
	return nil
}

// poolStats lists the instance pools of the components held now.
func (n *Node) poolStats() []obs.PoolStat {
	var out []obs.PoolStat
	for _, c := range n.eng.Components() {
		m := n.rt.Module(c.Hash)
		if m == nil {
			continue
		}
		inst, idle, rec := m.PoolStats()
		out = append(out, obs.PoolStat{Component: c.Name, Version: c.Hash.Short(), Instances: inst, Idle: idle, Recycles: rec})
	}
	return out
}

// routes adds GET /metrics and the journey API to the admin mux.
func (o *nodeObs) routes(mux *http.ServeMux) {
	if o == nil {
		return
	}
	mux.Handle("GET /metrics", promHandler(o.gather))
	o.ring.Routes(mux, "/v1")
}

func promHandler(g prometheus.Gatherer) http.Handler {
	if reg, ok := g.(*prometheus.Registry); ok {
		return obs.Handler(reg)
	}
	return obs.GathererHandler(g)
}

// observeSend is the dispatcher's Observe hook: hop size and latency, and
// why a send failed.
func (o *nodeObs) observeSend(p *lp.Process, took time.Duration, err error) {
	if o == nil {
		return
	}
	if err == nil {
		o.met.Sent(p.WireSize(), took.Seconds())
		return
	}
	o.met.HopFailed(sendFailure(err))
}

// sendFailure names why a send failed, from a short fixed list.
func sendFailure(err error) string {
	var ref *transport.Refusal
	switch {
	case errors.As(err, &ref):
		return "refused-" + ref.Reason.String()
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "canceled"
	}
	return "unreachable"
}

func (o *nodeObs) refused(r *transport.Refusal) error {
	if o != nil {
		o.met.Refused(r.Reason.String())
	}
	return r
}

func (o *nodeObs) accepted() {
	if o != nil {
		o.met.Accepted()
	}
}

// last returns p's newest trace step if this node ran it and the LP has
// not left since (its span is still to be made), else nil.
func (o *nodeObs) last(p *lp.Process) *lp.Step {
	if n := len(p.Trace); n > 0 {
		if s := &p.Trace[n-1]; s.Node == o.name && s.Next == lp.MoveNone && s.Start != 0 {
			return s
		}
	}
	return nil
}

// stepped records a step that ran: its metrics, and its queue wait in the
// LP's trace (wait < 0: it followed another step here without queueing).
func (o *nodeObs) stepped(p *lp.Process, component string, s *lp.Step, wait time.Duration) {
	if o == nil {
		return
	}
	if t := o.last(p); t != nil && t.Start == s.Start && wait > 0 {
		t.WaitMicros = uint32(min(wait.Microseconds(), 1<<32-1))
	}
	o.met.Step(component, s.Outcome, float64(s.Micros)/1e6, wait.Seconds())
}

// stayed is called before a step runs here: the previous step here, if
// the LP did not leave after it, is complete and gets its span.
func (o *nodeObs) stayed(p *lp.Process) {
	if o == nil || o.tr == nil {
		return
	}
	if t := o.last(p); t != nil {
		o.tr.Step(p, t)
	}
}

// leaving marks the step that ran here last with why the LP is about to
// leave, so the receiver gets it in the LP. It reports whether it marked
// one, for left or stay.
func (o *nodeObs) leaving(p *lp.Process, reason lp.Move) bool {
	if o == nil {
		return false
	}
	if t := o.last(p); t != nil {
		t.Next = reason
		return true
	}
	return false
}

// stay undoes leaving: the LP did not leave.
func (o *nodeObs) stay(p *lp.Process, marked bool) {
	if marked {
		p.Trace[len(p.Trace)-1].Next = lp.MoveNone
	}
}

// left records an LP that left for reason: the span of the step marked by
// leaving, the journey so far, and the migration.
func (o *nodeObs) left(p *lp.Process, marked bool, reason lp.Move) {
	if o == nil {
		return
	}
	if marked && o.tr != nil {
		o.tr.Step(p, &p.Trace[len(p.Trace)-1])
	}
	if reason != lp.MoveReturn || p.Origin != o.name {
		o.met.Migrated(reason)
	}
	o.ring.Record(p, "", 0)
}

// installed, autogrow and membership count the node's notable events.
func (o *nodeObs) installed(source string) {
	if o != nil {
		o.met.Installed(source)
	}
}

func (o *nodeObs) membership(event string) {
	if o != nil {
		o.met.Membership(event)
	}
}

func (o *nodeObs) autogrown(action string) {
	if o != nil {
		o.met.Autogrow(action)
	}
}
