package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tsubame-rt/tsubame/node/blob"

	"github.com/tsubame-rt/tsubame/internal/mesh/cluster"
	"github.com/tsubame-rt/tsubame/internal/mesh/dispatch"
	"github.com/tsubame-rt/tsubame/internal/mesh/sched"
	"github.com/tsubame-rt/tsubame/internal/mesh/transport"
	"github.com/tsubame-rt/tsubame/internal/obs"
	"github.com/tsubame-rt/tsubame/lp"
)

// directory is the gateway's view of the cluster: cluster.Cluster backs it;
// an in-memory one backs unit tests.
type directory interface {
	dispatch.Directory
	// Peers are the live members with fresh reports.
	Peers() []cluster.Peer
}

// settings are the dispatch and limit knobs of a running gateway.
type settings struct {
	attempts       int
	attemptTimeout time.Duration
	maxInFlight    int
	maxBody        int64
	readTimeout    time.Duration
	writeTimeout   time.Duration // from the end of the request body
	exposeTrace    bool
	limits         lp.Limits
}

// Gateway turns HTTP requests into LPs and finished LPs into responses.
type Gateway struct {
	name string
	set  settings
	dir  directory
	disp *dispatch.Dispatcher
	log  *slog.Logger
	// table is the live route table (admin.go): routes can change at run
	// time through the admin API.
	table routeTable

	mu      sync.Mutex
	waiting map[lp.ID]*call

	slots chan struct{} // one per request in flight
	stats stats
	obs   *gatewayObs // metrics, spans, journeys (observe.go)
	// self, for a gateway embedded in a node, is that node as the dashboard
	// shows it.
	self func() obs.UIMember

	// blobs keeps the blobs of this gateway's LPs: large bodies it makes,
	// and everything its LPs refer to when they come back (node/blob).
	// Nil: no blobs, every input inline.
	blobs     *blob.Store
	stopSweep context.CancelFunc
	// local, set in a gateway embedded in a node (embed.go), runs a fresh
	// LP on that node when its first step belongs there, and reports
	// whether it did.
	local func(*lp.Process) bool

	// Set by New; nil in a core built for unit tests.
	srv *servers
	cl  *cluster.Cluster
	tr  *transport.Transport
	adm *adminServer // nil unless [admin] is on
}

// call is one request waiting for its LP to come back.
type call struct {
	done chan *lp.Process // capacity 1; written once, by the first reply
}

// stats are the gateway's counters, shown by GET /healthz.
type stats struct {
	requests, replies, resends, duplicates atomic.Int64
	noHolder, unavailable, timeouts, busy  atomic.Int64
	tooLarge, local                        atomic.Int64
}

// newCore builds the request-handling part of a gateway, dispatching over
// net to the holders dir names.
func newCore(name string, set settings, routes []Route, net dispatch.Sender, dir directory, policy sched.Policy, log *slog.Logger) (*Gateway, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	g := &Gateway{
		name: name, set: set, dir: dir, log: log,
		// A live node acknowledges in well under a millisecond; one that has
		// died without membership noticing yet stays silent. Bounding each
		// send leaves room in the attempt to try the other holders.
		waiting: map[lp.ID]*call{},
		slots:   make(chan struct{}, set.maxInFlight),
	}
	g.disp = dispatch.New(dispatch.Config{
		Policy: policy, SendTimeout: set.attemptTimeout / sendsPerAttempt,
		WaitFresh: freshWait, MaxBytes: set.limits.MaxTotal, Logger: log, Observe: g.observeSend,
	}, net, dir)
	g.obs = g.newObs(nil, nil)
	table := make([]RouteInfo, len(routes))
	for i, r := range routes {
		table[i] = RouteInfo{r, routeFromConfig}
	}
	if err := g.setRoutes(table); err != nil {
		return nil, err
	}
	return g, nil
}

// handle registers a pattern, turning ServeMux's panic on a bad or
// conflicting pattern into an error. The panic names the Go source lines
// that registered each pattern, which mean nothing to an operator: they
// are cut out.
func handle(mux *http.ServeMux, pattern string, h http.Handler) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = errors.New(muxSource.ReplaceAllString(fmt.Sprint(v), ""))
		}
	}()
	mux.Handle(pattern, h)
	return nil
}

// muxSource is the " (registered at FILE:LINE)" of ServeMux's messages.
var muxSource = regexp.MustCompile(` \(registered at [^)]*\)`)

const healthPath = "/healthz"

// Handler returns the gateway's HTTP handler: the routes and GET /healthz.
func (g *Gateway) Handler() http.Handler { return http.HandlerFunc(g.serveHTTP) }

// Name returns the gateway's member name, the Origin of its LPs.
func (g *Gateway) Name() string { return g.name }

// health answers 200 when at least one node is live, 503 otherwise, with
// the counters as "name value" lines.
func (g *Gateway) health(w http.ResponseWriter, r *http.Request) {
	n := g.Nodes()
	g.mu.Lock()
	waiting := len(g.waiting)
	g.mu.Unlock()
	status, first := http.StatusOK, "ok"
	if n == 0 {
		status, first = http.StatusServiceUnavailable, "no nodes"
	}
	w.Header().Set("Content-Type", defaultContentType)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	s := &g.stats
	fmt.Fprintf(w, "%s\nnodes %d\nin_flight %d\nrequests %d\nreplies %d\nresends %d\nlate_duplicates %d\n"+
		"no_holder %d\nunavailable %d\ntimeouts %d\nbusy %d\ntoo_large %d\nrun_here %d\n",
		first, n, waiting, s.requests.Load(), s.replies.Load(), s.resends.Load(), s.duplicates.Load(),
		s.noHolder.Load(), s.unavailable.Load(), s.timeouts.Load(), s.busy.Load(), s.tooLarge.Load(), s.local.Load())
}

// serveRoute answers one request of rt: build the input, run the LP, write
// the reply.
func (g *Gateway) serveRoute(rt *route) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		g.stats.requests.Add(1)
		start := time.Now()
		status := http.StatusOK
		var p *lp.Process
		var q obs.Request
		defer func() { g.obs.finished(rt.pattern, status, start, p, q) }()
		if r.ContentLength > g.set.maxBody {
			status = g.tooLarge(w)
			return
		}
		// The whole request is read before its LP starts, even a body the
		// route ignores: an LP runs only on complete input, and a client
		// still sending when its answer comes would lose it to the reset.
		if r.ProtoMajor == 3 && g.set.readTimeout > 0 {
			// http3 has no server-wide ReadTimeout; bound a slow body here.
			_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(g.set.readTimeout))
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, g.set.maxBody))
		if err != nil {
			if errors.As(err, new(*http.MaxBytesError)) {
				status = g.tooLarge(w)
				return
			}
			status = http.StatusBadRequest
			httpError(w, status, fmt.Sprintf("tsubame: reading the request body: %v\n", err))
			return
		}
		if !rt.needBody {
			body = nil
		}
		// write_timeout counts from here: time the client spent sending must
		// not cost it the answer of an LP that ran.
		g.writeBy(w, time.Now())
		input, err := rt.input(r, body)
		if err != nil {
			status = http.StatusBadRequest
			httpError(w, status, fmt.Sprintf("tsubame: %v\n", err))
			return
		}
		if max := g.set.limits.MaxBytes; max > 0 && len(input) > max && !g.byRef(len(input)) {
			status = g.tooLarge(w)
			return
		}
		select {
		case g.slots <- struct{}{}:
			defer func() { <-g.slots }()
		default:
			g.stats.busy.Add(1)
			w.Header().Set("Retry-After", "1")
			status = http.StatusServiceUnavailable
			httpError(w, status,
				fmt.Sprintf("tsubame: gateway busy: %d requests in flight\n", cap(g.slots)))
			return
		}
		var tc lp.TraceContext
		q = g.obs.tracer().StartRequest(r.Context(), r, rt.pattern, &tc)
		p, err = g.do(r.Context(), rt.Component, rt.Kind, input, tc)
		if err != nil {
			status = dispatchFailed(w, err)
			return
		}
		g.stats.replies.Add(1)
		status = g.writeReply(w, rt, p)
	}
}

// writeBy sets the response's write deadline write_timeout after from.
// Servers have no WriteTimeout of their own (net/http's counts from the end
// of the headers, so a slow body ate into it): this is the only one.
func (g *Gateway) writeBy(w http.ResponseWriter, from time.Time) {
	if g.set.writeTimeout > 0 {
		_ = http.NewResponseController(w).SetWriteDeadline(from.Add(g.set.writeTimeout))
	}
}

func (g *Gateway) tooLarge(w http.ResponseWriter) int {
	g.stats.tooLarge.Add(1)
	httpError(w, http.StatusRequestEntityTooLarge,
		fmt.Sprintf("tsubame: request too large: the body may be at most %d bytes\n", g.set.maxBody))
	return http.StatusRequestEntityTooLarge
}

func httpError(w http.ResponseWriter, status int, body string) {
	h := w.Header()
	h.Set("Content-Type", defaultContentType)
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	io.WriteString(w, body)
}

// writeReply answers from a finished LP's root entry and returns the
// status it answered with.
func (g *Gateway) writeReply(w http.ResponseWriter, rt *route, p *lp.Process) int {
	if g.set.exposeTrace {
		w.Header().Set("Tsubame-Trace", traceHeader(p))
		w.Header().Set("Tsubame-Lp", p.ID.String()) // for `tsubame trace` and the dashboard
	}
	w.Header().Set("Tsubame-Attempt", strconv.FormatUint(uint64(p.Attempt), 10))
	root := p.Root()
	if root.State == lp.StateFailed {
		w.Header().Set("Tsubame-Code", strconv.FormatUint(uint64(root.ErrCode), 10))
		status := failureStatus(root.ErrCode)
		httpError(w, status, failureBody(rt.Component, root.ErrCode, root.ErrMsg))
		return status
	}
	if rt.Output == outResponse {
		res, err := parseResponse(root.Output)
		if err != nil {
			httpError(w, http.StatusBadGateway,
				fmt.Sprintf("tsubame: %s replied with a malformed response envelope: %v\n", rt.Component, err))
			return http.StatusBadGateway
		}
		for k, v := range res.header {
			w.Header()[k] = v
		}
		if w.Header().Get("Content-Type") == "" {
			w.Header().Set("Content-Type", defaultContentType)
		}
		w.WriteHeader(res.status)
		w.Write(res.body)
		return res.status
	}
	w.Header().Set("Content-Type", rt.ContentType)
	w.WriteHeader(http.StatusOK)
	w.Write(root.Output)
	return http.StatusOK
}

// traceHeader lists the nodes that ran the LP's recorded steps, in order.
func traceHeader(p *lp.Process) string {
	var b strings.Builder
	for i, s := range p.Trace {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(s.Node)
	}
	return b.String()
}

// dispatchError is a request that ended without a reply: the status and the
// reason the client gets.
type dispatchError struct {
	status int
	msg    string
}

func (e *dispatchError) Error() string { return e.msg }

// noHolder reports whether a dispatch failed because no live node holds the
// component with a fresh report, even after waiting for one.
func noHolder(err error) bool {
	return errors.Is(err, dispatch.ErrNoHolder) || errors.Is(err, dispatch.ErrNoFresh)
}

// do runs one request as an LP and returns it finished. Each attempt sends a
// fresh root entry under the same ID; the first reply of any attempt wins.
// tc is the trace context every attempt's LP carries.
func (g *Gateway) do(ctx context.Context, component, kind string, input []byte, tc lp.TraceContext) (*lp.Process, error) {
	id := lp.NewID()
	c := &call{done: make(chan *lp.Process, 1)}
	g.mu.Lock()
	g.waiting[id] = c
	g.mu.Unlock()
	defer g.forget(id, c)

	// The LP's own deadline is the end of the last attempt: a slow earlier
	// attempt may still win, and nobody works on it after we stop waiting.
	timeout := g.set.attemptTimeout
	deadline := time.Now().Add(time.Duration(g.set.attempts) * timeout)
	root := lp.Entry{Parent: lp.NoEntry, Target: component, Kind: kind, Input: input, State: lp.StateReady}
	var rows []lp.Blob
	if g.byRef(len(input)) {
		row, err := g.blobs.Put(ctx, &lp.Process{ID: id, Deadline: deadline.UnixNano()}, input)
		if err != nil {
			g.stats.unavailable.Add(1)
			return nil, &dispatchError{http.StatusServiceUnavailable, fmt.Sprintf("tsubame: cannot keep the %d-byte request body: %v", len(input), err)}
		}
		defer g.blobs.Free(id)
		root.Input, root.InputRef, rows = row.Ref.Bytes(), true, []lp.Blob{row}
	}
	var acked int
	var lastErr error
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for a := 0; a < g.set.attempts; a++ {
		if a > 0 {
			g.stats.resends.Add(1)
		}
		end := time.Now().Add(timeout)
		p := &lp.Process{
			ID: id, Origin: g.name, Attempt: uint32(a), Deadline: deadline.UnixNano(),
			Entries: []lp.Entry{root}, Blobs: rows, TraceContext: tc,
		}
		var err error
		if g.local != nil && g.local(p) {
			g.stats.local.Add(1) // this node owns it: no hop
		} else {
			_, err = g.disp.Dispatch(ctx, p, end)
		}
		switch {
		case err == nil:
			acked++
		case noHolder(err) && acked == 0 && a == 0:
			g.stats.noHolder.Add(1)
			return nil, &dispatchError{http.StatusServiceUnavailable,
				fmt.Sprintf("tsubame: no live node holds component %s", component)}
		default:
			lastErr = err
			// Nobody took it: wait a little for membership to change
			// rather than burn the remaining attempts at once.
			end = time.Now().Add(min(timeout, retryPause))
		}
		timer.Reset(time.Until(end))
		select {
		case p := <-c.done:
			return p, g.resolveReply(ctx, p)
		case <-timer.C:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if acked > 0 {
		g.stats.timeouts.Add(1)
		return nil, &dispatchError{http.StatusGatewayTimeout,
			fmt.Sprintf("tsubame: no reply from component %s: %s of %s each timed out (%d sent)",
				component, plural(g.set.attempts, "attempt"), timeout, acked)}
	}
	g.stats.unavailable.Add(1)
	if noHolder(lastErr) {
		return nil, &dispatchError{http.StatusServiceUnavailable,
			fmt.Sprintf("tsubame: no live node holds component %s", component)}
	}
	return nil, &dispatchError{http.StatusServiceUnavailable,
		fmt.Sprintf("tsubame: no node accepted the request for component %s in %s: %v",
			component, plural(g.set.attempts, "attempt"), lastErr)}
}

// byRef reports whether an input of n bytes goes by reference.
func (g *Gateway) byRef(n int) bool {
	return g.blobs != nil && n > g.blobs.Threshold()
}

// resolveReply replaces a root reply held by reference with its bytes, and
// frees the blobs of the finished LP: it has no further use for them. The
// holder rule has them here already (a node hands an LP's blobs to its
// origin before returning it), so this reads memory, not the network.
func (g *Gateway) resolveReply(ctx context.Context, p *lp.Process) error {
	if g.blobs == nil {
		return nil
	}
	defer g.blobs.Free(p.ID)
	root := p.Root()
	if root == nil || !root.OutputRef {
		return nil
	}
	ref, err := lp.ParseRef(root.Output)
	if err != nil {
		return &dispatchError{http.StatusBadGateway, fmt.Sprintf("tsubame: malformed reply reference: %v", err)}
	}
	row := lp.Blob{Ref: ref}
	if i := p.BlobRow(ref.Hash); i >= 0 {
		row = p.Blobs[i]
	}
	data, err := g.blobs.Get(ctx, p, row)
	if err != nil {
		return &dispatchError{http.StatusBadGateway, fmt.Sprintf("tsubame: the reply of %d bytes is unavailable: %v", ref.Size, err)}
	}
	root.Output, root.OutputRef = data, false
	return nil
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// retryPause is how long an attempt that no node accepted waits before the
// next one.
const retryPause = 50 * time.Millisecond

// forget drops a finished or abandoned request.
func (g *Gateway) forget(id lp.ID, c *call) {
	g.mu.Lock()
	if g.waiting[id] == c {
		delete(g.waiting, id)
	}
	g.mu.Unlock()
}

// freshWait bounds how long a dispatch waits for a holder's report to become
// fresh again (dispatch.Config.WaitFresh): a request can wait a second for a
// stalled node rather than fail.
const freshWait = time.Second

// sendsPerAttempt is how many silent holders one attempt can try: each send
// may take at most this fraction of the attempt timeout.
const sendsPerAttempt = 3

// errNotFinished is AcceptLP's answer to an LP that still has work to do: a
// gateway runs no components.
var errNotFinished = errors.New("gateway runs no components")

// accept takes a finished LP coming back to its origin. The first reply of
// a request wins; anything else is a late duplicate, acknowledged and
// dropped.
func (g *Gateway) accept(from string, p *lp.Process) error {
	if !p.Finished() {
		return errNotFinished
	}
	if root := p.Root(); root == nil || !root.State.Finished() {
		return errors.New("finished LP without a finished root entry")
	}
	g.mu.Lock()
	c := g.waiting[p.ID]
	if c != nil {
		delete(g.waiting, p.ID)
	}
	g.mu.Unlock()
	if c == nil {
		g.stats.duplicates.Add(1)
		g.log.Debug("late duplicate dropped", "lp", p.ID, "attempt", p.Attempt, "from", from)
		return nil
	}
	c.done <- p // never blocks: the entry was removed under the lock, so this is the only write
	return nil
}

// dispatchFailed answers a request whose LP did not come back and returns
// the status: a *dispatchError carries its own; anything else means the
// client went away, and nobody reads the 503.
func dispatchFailed(w http.ResponseWriter, err error) int {
	var de *dispatchError
	if errors.As(err, &de) {
		httpError(w, de.status, de.Error()+"\n")
		return de.status
	}
	httpError(w, http.StatusServiceUnavailable, "tsubame: "+err.Error()+"\n")
	return http.StatusServiceUnavailable
}
