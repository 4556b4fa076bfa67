package gateway

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/tsubame-rt/tsubame/internal/obs"
	"github.com/tsubame-rt/tsubame/lp"
)

// gatewayObs is what a gateway records: Prometheus metrics, the request
// spans (when tracing is on) and the ring of recent journeys, which holds
// every returning LP's whole journey.
type gatewayObs struct {
	met    *obs.GatewayMetrics
	ring   *obs.Ring
	tr     *obs.Tracer
	gather prometheus.Gatherer
}

// newObs registers g's metrics on reg (a fresh registry when nil, wrapped
// with a member label when shared by the members of one process).
func (g *Gateway) newObs(shared *prometheus.Registry, tr *obs.Tracer) *gatewayObs {
	var reg prometheus.Registerer
	var gather prometheus.Gatherer
	if shared != nil {
		reg, gather = prometheus.WrapRegistererWith(prometheus.Labels{"member": g.name}, shared), shared
	} else {
		r := obs.NewRegistry()
		reg, gather = r, r
	}
	s := &g.stats
	read := func(c interface{ Load() int64 }) func() float64 { return func() float64 { return float64(c.Load()) } }
	met := obs.NewGatewayMetrics(reg, obs.GatewayCounters{
		InFlight: func() float64 {
			g.mu.Lock()
			defer g.mu.Unlock()
			return float64(len(g.waiting))
		},
		Resends: read(&s.resends), Duplicates: read(&s.duplicates),
		Failures: map[string]func() float64{
			"no-holder": read(&s.noHolder), "unavailable": read(&s.unavailable), "timeout": read(&s.timeouts),
			"busy": read(&s.busy), "too-large": read(&s.tooLarge),
		},
	})
	return &gatewayObs{met: met, ring: obs.NewRing(g.name, 0), tr: tr, gather: gather}
}

// tracer is o's tracer; nil (tracing off) when o is.
func (o *gatewayObs) tracer() *obs.Tracer {
	if o == nil {
		return nil
	}
	return o.tr
}

// observeSend is the dispatcher's Observe hook.
func (g *Gateway) observeSend(p *lp.Process, took time.Duration, err error) {
	if err == nil && g.obs != nil {
		g.obs.met.Sent(p.WireSize(), took.Seconds())
	}
}

// finished records an answered request: its metrics, and, when an LP came
// back, its journey and the request span's LP.
func (o *gatewayObs) finished(route string, status int, start time.Time, p *lp.Process, q obs.Request) {
	if o == nil {
		return
	}
	elapsed := time.Since(start)
	o.met.Request(route, status, elapsed.Seconds())
	attempts := 0
	if p != nil {
		o.ring.Record(p, route, elapsed)
		q.SetLP(p)
		attempts = int(p.Attempt) + 1
	}
	q.End(status, attempts)
}

// UI is the gateway's dashboard: its view of the cluster, its routes'
// counters and its journeys.
func (g *Gateway) UI() *obs.UI {
	return &obs.UI{Origin: g.name, Members: g.uiMembers, Gatherer: g.obs.gather, Ring: g.obs.ring}
}

func (g *Gateway) uiMembers() []obs.UIMember {
	if g.cl == nil {
		return nil
	}
	now := time.Now()
	var out []obs.UIMember
	if g.self != nil {
		out = append(out, g.self())
	}
	for _, p := range g.cl.Members() {
		m := obs.UIMember{Name: p.Name, Gateway: p.Meta.Gateway, Load: p.Meta.Load, Queue: p.Meta.Queue,
			Workers: p.Meta.Workers, Fresh: !p.Updated.IsZero() && now.Sub(p.Updated) <= g.cl.StaleAfter(),
			Components: []obs.UIComponent{}}
		for _, c := range p.Meta.Components {
			m.Components = append(m.Components, obs.UIComponent{Name: c.Name, Version: c.Hash.Short()})
		}
		out = append(out, m)
	}
	return out
}

// obsRoutes adds GET /metrics, the journey API and (when ui) the dashboard
// to mux.
func (g *Gateway) obsRoutes(mux *http.ServeMux, ui bool) {
	if g.obs == nil {
		return
	}
	mux.Handle("GET /metrics", obs.GathererHandler(g.obs.gather))
	g.obs.ring.Routes(mux, "/v1")
	if ui {
		mux.Handle("GET /ui/", g.UI().Handler())
		mux.Handle("GET /ui", http.RedirectHandler("/ui/", http.StatusMovedPermanently))
	}
}

// withUI serves the dashboard, /metrics and the journeys on the client-facing
// address ([http] ui), before the route table: those paths win over routes.
func (g *Gateway) withUI(routes http.Handler) http.Handler {
	mux := http.NewServeMux()
	g.obsRoutes(mux, true)
	mux.Handle("/", routes)
	return mux
}
