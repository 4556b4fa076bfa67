package obs

import (
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/tsubame-rt/tsubame/lp"
)

// Namespace prefixes every metric Tsubame exports.
const Namespace = "tsubame"

// NewRegistry returns a registry with the Go runtime and process collectors,
// the one a node or gateway (or a node embedding a gateway) serves.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// Handler serves reg in the Prometheus text (or negotiated) format.
func Handler(reg *prometheus.Registry) http.Handler {
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg, ErrorHandling: promhttp.ContinueOnError})
}

// Buckets of the duration histograms, in seconds: a step takes microseconds
// (a WAT component) to seconds (a render), a hop ~100us on loopback.
var (
	stepBuckets = prometheus.ExponentialBuckets(10e-6, 4, 11) // 10us .. 10.5s
	hopBuckets  = prometheus.ExponentialBuckets(25e-6, 3, 11) // 25us .. 1.5s
	waitBuckets = prometheus.ExponentialBuckets(10e-6, 4, 11)
	sizeBuckets = prometheus.ExponentialBuckets(256, 4, 9) // 256 B .. 16 MiB
	httpBuckets = prometheus.ExponentialBuckets(100e-6, 3, 12)
)

// NodeMetrics are a node's metrics. Labels are bounded by what the operator
// configures (components, peers of the cluster, fixed reason lists): never
// an LP ID.
type NodeMetrics struct {
	steps      *prometheus.CounterVec   // component, outcome
	stepTime   *prometheus.HistogramVec // component
	queueWait  prometheus.Histogram
	migrations *prometheus.CounterVec // reason
	migFailed  *prometheus.CounterVec // reason
	hopBytes   prometheus.Histogram
	hopTime    prometheus.Histogram
	accepted   prometheus.Counter
	refused    *prometheus.CounterVec // reason
	installs   *prometheus.CounterVec // source
	autogrow   *prometheus.CounterVec // action
	membership *prometheus.CounterVec // event

	byComp   atomic.Pointer[map[string]*compMetrics]
	compMu   sync.Mutex
	byReason [lpMoves]prometheus.Counter
}

const lpMoves = int(lp.MoveReturn) + 1

// compMetrics are one component's resolved handles, so that a step costs
// a map read and two atomic adds, not a label hash.
type compMetrics struct {
	outcome [4]prometheus.Counter // by lp.Outcome
	time    prometheus.Observer
}

// NodeGauges are read at scrape time, so the hot path never touches them.
type NodeGauges struct {
	Queue   func() float64 // LPs waiting in the run queue
	Running func() float64 // steps running now
	Load    func() float64 // the load figure the node advertises
	Members func() float64 // live members it sees, itself excluded
	Workers int
	// Pools lists the wasm instance pools: per component version, the
	// instances alive and the recycles so far.
	Pools func() []PoolStat
}

// PoolStat is one module's instance pool.
type PoolStat struct {
	Component, Version string
	Instances, Idle    int
	Recycles           uint64
}

// NewNodeMetrics registers a node's metrics on reg.
func NewNodeMetrics(reg prometheus.Registerer, g NodeGauges) *NodeMetrics {
	f := factory{reg}
	m := &NodeMetrics{
		steps: f.counterVec("steps_total", "Component steps run on this node, by outcome (reply, call, fail).",
			"component", "outcome"),
		stepTime: f.histogramVec("step_duration_seconds", "Time one component step ran.", stepBuckets, "component"),
		queueWait: f.histogram("queue_wait_seconds", "Time an LP waited in this node's run queue before a step.",
			waitBuckets),
		migrations: f.counterVec("migrations_total",
			"LPs this node handed to another member, by reason (not-held, overloaded, pushed, drain, return).", "reason"),
		migFailed: f.counterVec("migration_failures_total",
			"Migration attempts that did not hand the LP on (refused, unreachable), by reason.", "reason"),
		hopBytes: f.histogram("hop_bytes", "Encoded size of an LP sent to another member.", sizeBuckets),
		hopTime: f.histogram("hop_duration_seconds",
			"Time from sending an LP to the receiver's acknowledgement.", hopBuckets),
		accepted: f.counter("lps_accepted_total", "LPs this node took from another member or a gateway."),
		refused: f.counterVec("lps_refused_total",
			"LPs this node refused, by reason (overloaded, shutting-down, unknown-component, malformed).", "reason"),
		installs: f.counterVec("installs_total",
			"Component versions installed on this node, by source (config, upload, peer, auto).", "source"),
		autogrow: f.counterVec("autogrow_actions_total",
			"Auto-grow actions this node decided, by action (install, remove).", "action"),
		membership: f.counterVec("membership_changes_total",
			"Membership events this node saw, by event (join, leave, fail).", "event"),
	}
	empty := map[string]*compMetrics{}
	m.byComp.Store(&empty)
	for r := lp.MoveNotHeld; int(r) < len(m.byReason); r++ {
		m.byReason[r] = m.migrations.WithLabelValues(r.String())
	}
	gauge := func(name, help string, fn func() float64) {
		if fn != nil {
			reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: Namespace, Name: name, Help: help}, fn))
		}
	}
	gauge("queue_length", "LPs waiting in this node's run queue.", g.Queue)
	gauge("steps_running", "Component steps running on this node now.", g.Running)
	gauge("load", "This node's one-dimensional load figure: work per worker plus weighted CPU use.", g.Load)
	gauge("members", "Live cluster members this node sees, itself excluded.", g.Members)
	if g.Workers > 0 {
		w := float64(g.Workers)
		gauge("workers", "Workers running steps on this node.", func() float64 { return w })
	}
	if g.Pools != nil {
		reg.MustRegister(poolCollector(g.Pools))
	}
	return m
}

func (m *NodeMetrics) comp(component string) *compMetrics {
	if c := (*m.byComp.Load())[component]; c != nil {
		return c
	}
	m.compMu.Lock()
	defer m.compMu.Unlock()
	old := *m.byComp.Load()
	if c := old[component]; c != nil {
		return c
	}
	c := &compMetrics{time: m.stepTime.WithLabelValues(component)}
	for o := lp.OutcomeReply; o <= lp.OutcomeFail; o++ {
		c.outcome[o] = m.steps.WithLabelValues(component, o.String())
	}
	next := make(map[string]*compMetrics, len(old)+1)
	for k, v := range old {
		next[k] = v
	}
	next[component] = c
	m.byComp.Store(&next)
	return c
}

// Step counts one step of component that ran for seconds with outcome o,
// after waiting wait seconds in the queue (negative: not queued before it).
func (m *NodeMetrics) Step(component string, o lp.Outcome, seconds, wait float64) {
	if m == nil {
		return
	}
	c := m.comp(component)
	if o >= lp.OutcomeReply && o <= lp.OutcomeFail {
		c.outcome[o].Inc()
	}
	c.time.Observe(seconds)
	if wait >= 0 {
		m.queueWait.Observe(wait)
	}
}

// Migrated counts one LP this node handed on, by why.
func (m *NodeMetrics) Migrated(reason lp.Move) {
	if m != nil && reason != lp.MoveNone && int(reason) < len(m.byReason) {
		m.byReason[reason].Inc()
	}
}

// Sent records one LP sent to another member and acknowledged: its size
// and the time to the acknowledgement.
func (m *NodeMetrics) Sent(bytes int, seconds float64) {
	if m != nil {
		m.hopBytes.Observe(float64(bytes))
		m.hopTime.Observe(seconds)
	}
}

// HopFailed counts a migration attempt that did not hand the LP on.
func (m *NodeMetrics) HopFailed(reason string) {
	if m != nil {
		m.migFailed.WithLabelValues(reason).Inc()
	}
}

// Accepted counts an LP taken in; Refused one refused, by reason.
func (m *NodeMetrics) Accepted() {
	if m != nil {
		m.accepted.Inc()
	}
}

func (m *NodeMetrics) Refused(reason string) {
	if m != nil {
		m.refused.WithLabelValues(reason).Inc()
	}
}

// Installed counts a component version installed from source.
func (m *NodeMetrics) Installed(source string) {
	if m != nil {
		m.installs.WithLabelValues(source).Inc()
	}
}

// Autogrow counts an auto-grow action ("install" or "remove").
func (m *NodeMetrics) Autogrow(action string) {
	if m != nil {
		m.autogrow.WithLabelValues(action).Inc()
	}
}

// Membership counts a membership event ("join", "leave", "fail").
func (m *NodeMetrics) Membership(event string) {
	if m != nil {
		m.membership.WithLabelValues(event).Inc()
	}
}

// GatewayMetrics are a gateway's metrics.
type GatewayMetrics struct {
	requests *prometheus.CounterVec   // route, code
	duration *prometheus.HistogramVec // route
	hopBytes prometheus.Histogram
	hopTime  prometheus.Histogram

	byRoute atomic.Pointer[map[string]*routeMetrics]
	routeMu sync.Mutex
}

// routeMetrics caches one route's handles by status code.
type routeMetrics struct {
	time  prometheus.Observer
	mu    sync.Mutex
	codes atomic.Pointer[map[int]prometheus.Counter]
	vec   *prometheus.CounterVec
	route string
}

// GatewayCounters are the gateway's own counters, read at scrape time so
// that its request path keeps a single atomic add per event.
type GatewayCounters struct {
	InFlight   func() float64
	Resends    func() float64
	Duplicates func() float64
	// Failures counts requests that ended without a reply, by why
	// (no-holder, unavailable, timeout, busy, too-large).
	Failures map[string]func() float64
}

// NewGatewayMetrics registers a gateway's metrics on reg.
func NewGatewayMetrics(reg prometheus.Registerer, c GatewayCounters) *GatewayMetrics {
	f := factory{reg}
	m := &GatewayMetrics{
		requests: f.counterVec("http_requests_total",
			"HTTP requests the gateway answered, by route pattern and status code.", "route", "code"),
		duration: f.histogramVec("http_request_duration_seconds",
			"Time from a request's arrival to its answer, by route pattern.", httpBuckets, "route"),
		hopBytes: f.histogram("gateway_hop_bytes", "Encoded size of an LP the gateway sent to a node.", sizeBuckets),
		hopTime: f.histogram("gateway_hop_duration_seconds",
			"Time from the gateway sending an LP to the node's acknowledgement.", hopBuckets),
	}
	empty := map[string]*routeMetrics{}
	m.byRoute.Store(&empty)
	fn := func(name, help string, read func() float64, counter bool, labels prometheus.Labels) {
		if read == nil {
			return
		}
		if counter {
			reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: Namespace, Name: name, Help: help, ConstLabels: labels}, read))
		} else {
			reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: Namespace, Name: name, Help: help, ConstLabels: labels}, read))
		}
	}
	fn("gateway_in_flight", "Requests waiting for their LP to come back.", c.InFlight, false, nil)
	fn("gateway_resends_total", "Requests the gateway sent again after an attempt timed out or nobody took it.", c.Resends, true, nil)
	fn("gateway_duplicates_total", "Late replies the gateway dropped because an earlier attempt had answered.", c.Duplicates, true, nil)
	for reason, read := range c.Failures {
		fn("gateway_failures_total", "Requests that ended without a reply from the cluster, by why.", read, true, prometheus.Labels{"reason": reason})
	}
	return m
}

func (m *GatewayMetrics) route(pattern string) *routeMetrics {
	if r := (*m.byRoute.Load())[pattern]; r != nil {
		return r
	}
	m.routeMu.Lock()
	defer m.routeMu.Unlock()
	old := *m.byRoute.Load()
	if r := old[pattern]; r != nil {
		return r
	}
	r := &routeMetrics{time: m.duration.WithLabelValues(pattern), vec: m.requests, route: pattern}
	codes := map[int]prometheus.Counter{}
	r.codes.Store(&codes)
	next := make(map[string]*routeMetrics, len(old)+1)
	for k, v := range old {
		next[k] = v
	}
	next[pattern] = r
	m.byRoute.Store(&next)
	return r
}

func (r *routeMetrics) code(status int) prometheus.Counter {
	if c := (*r.codes.Load())[status]; c != nil {
		return c
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	old := *r.codes.Load()
	if c := old[status]; c != nil {
		return c
	}
	c := r.vec.WithLabelValues(r.route, statusText(status))
	next := make(map[int]prometheus.Counter, len(old)+1)
	for k, v := range old {
		next[k] = v
	}
	next[status] = c
	r.codes.Store(&next)
	return c
}

// statusText is the code label: the three digits, from a table for the
// common ones so that labelling allocates nothing.
func statusText(code int) string {
	if code >= 100 && code <= 599 {
		return codeStrings[code-100]
	}
	return "other"
}

var codeStrings = func() (s [500]string) {
	for i := range s {
		c := i + 100
		s[i] = string([]byte{byte('0' + c/100), byte('0' + c/10%10), byte('0' + c%10)})
	}
	return s
}()

// Request counts one answered request of route (its pattern; "" for no
// route) with status, taking seconds.
func (m *GatewayMetrics) Request(route string, status int, seconds float64) {
	if m == nil {
		return
	}
	if route == "" {
		route = "none"
	}
	r := m.route(route)
	r.code(status).Inc()
	r.time.Observe(seconds)
}

// Sent records an LP sent to a node and acknowledged.
func (m *GatewayMetrics) Sent(bytes int, seconds float64) {
	if m != nil {
		m.hopBytes.Observe(float64(bytes))
		m.hopTime.Observe(seconds)
	}
}

type factory struct{ reg prometheus.Registerer }

func (f factory) counter(name, help string) prometheus.Counter {
	c := prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Name: name, Help: help})
	f.reg.MustRegister(c)
	return c
}

func (f factory) counterVec(name, help string, labels ...string) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: name, Help: help}, labels)
	f.reg.MustRegister(c)
	return c
}

func (f factory) histogram(name, help string, buckets []float64) prometheus.Histogram {
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: Namespace, Name: name, Help: help, Buckets: buckets})
	f.reg.MustRegister(h)
	return h
}

func (f factory) histogramVec(name, help string, buckets []float64, labels ...string) *prometheus.HistogramVec {
	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: Namespace, Name: name, Help: help, Buckets: buckets}, labels)
	f.reg.MustRegister(h)
	return h
}

// poolCollector reports the wasm instance pools at scrape time.
type poolCollector func() []PoolStat

var (
	poolInstancesDesc = prometheus.NewDesc(Namespace+"_instances", "WebAssembly instances alive in a component version's pool (busy and idle).",
		[]string{"component", "version"}, nil)
	poolIdleDesc = prometheus.NewDesc(Namespace+"_instances_idle", "Idle instances in a component version's pool.",
		[]string{"component", "version"}, nil)
	poolRecyclesDesc = prometheus.NewDesc(Namespace+"_instance_recycles_total",
		"Instances retired and replaced (after N steps, memory growth, or a trap).", []string{"component", "version"}, nil)
)

func (c poolCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- poolInstancesDesc
	ch <- poolIdleDesc
	ch <- poolRecyclesDesc
}

func (c poolCollector) Collect(ch chan<- prometheus.Metric) {
	for _, p := range c() {
		ch <- prometheus.MustNewConstMetric(poolInstancesDesc, prometheus.GaugeValue, float64(p.Instances), p.Component, p.Version)
		ch <- prometheus.MustNewConstMetric(poolIdleDesc, prometheus.GaugeValue, float64(p.Idle), p.Component, p.Version)
		ch <- prometheus.MustNewConstMetric(poolRecyclesDesc, prometheus.CounterValue, float64(p.Recycles), p.Component, p.Version)
	}
}

// GathererHandler serves any gatherer (a registry shared by the members of
// one process, say) in the Prometheus text or negotiated format.
func GathererHandler(g prometheus.Gatherer) http.Handler {
	return promhttp.HandlerFor(g, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}
