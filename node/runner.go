package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tsubame-rt/tsubame/abi"
	"github.com/tsubame-rt/tsubame/internal/mesh/cluster"
	"github.com/tsubame-rt/tsubame/internal/mesh/sched"
	"github.com/tsubame-rt/tsubame/internal/mesh/transport"
	"github.com/tsubame-rt/tsubame/lp"
)

// stepper runs one step of an LP's active entry here: node/engine.
type stepper interface {
	// Step runs the active entry, applies its outcome to p and records a
	// trace step. An error means the step did not run (p is unchanged) or
	// the host failed it; see runStep.
	Step(ctx context.Context, p *lp.Process) (lp.Step, error)
	Holds(component string) bool
}

// sender migrates an LP to another node and returns once that node owns it
// (nil), refused it (a *transport.Refusal) or could not be reached: node/transport
// over QUIC; an in-memory network in unit tests.
type sender interface {
	Send(ctx context.Context, addr string, p *lp.Process) error
}

// directory is the node's view of the cluster: node/cluster.
type directory interface {
	Holders(component string) []cluster.Peer
	Peer(name string) (cluster.Peer, bool)
	Members() []cluster.Peer
}

// sendTimeout bounds one migration attempt, handshake included: a hop is
// ~100us and a handshake ~1ms on a LAN, and a receiver acknowledges as soon
// as the LP is queued, so a peer that takes a second is as good as gone and
// the LP tries another.
const sendTimeout = time.Second

// maxLocalRun is how many consecutive steps one LP may run on a worker before
// it goes to the back of the run queue, so one long call chain cannot keep
// queued LPs waiting.
const maxLocalRun = 16

// runner is the part of a node that owns LPs: the run queue, the workers,
// the rescheduling after every step. Node wires it to real parts.
type runner struct {
	name    string
	log     *slog.Logger
	eng     stepper
	net     sender
	dir     directory
	policy  sched.Policy
	sc      SchedulerConfig
	workers int
	limits  lp.Limits
	// deliver receives finished LPs whose origin is this node (nil: drop).
	deliver func(*lp.Process)

	q        *runQueue
	running  atomic.Int64
	draining atomic.Bool
	ctx      context.Context // canceled only when a shutdown runs out of time
	cancel   context.CancelFunc
	wg       sync.WaitGroup

	in, out atomic.Uint64 // LPs accepted, LPs handed on
	cpu     cpuSampler
	rates   rateWindow

	mu       sync.Mutex
	inflight map[string]*peerFlight

	// pushing is held by a push-out while it has LPs out of the queue, and
	// taken by drain before it empties and closes the queue: what the
	// push-out could not hand on must be back in the queue by then, or no
	// worker would be left to run it.
	pushing sync.Mutex
}

// peerFlight counts LPs sent to one peer since its last load report: work
// the report cannot show yet, which p2c adds to its load.
type peerFlight struct {
	reportAt time.Time
	sinceRep int
	total    uint64
}

func newRunner(name string, sc SchedulerConfig, workers, queue int, limits lp.Limits, eng stepper, net sender, dir directory, log *slog.Logger) (*runner, error) {
	pol, err := sched.New(sc.Policy)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &runner{
		name: name, log: log, eng: eng, net: net, dir: dir, policy: pol, sc: sc,
		workers: workers, limits: limits,
		q:   newRunQueue(queue),
		ctx: ctx, cancel: cancel,
		inflight: map[string]*peerFlight{},
	}, nil
}

func (r *runner) start() {
	for range r.workers {
		r.wg.Add(1)
		go r.work()
	}
}

// accept is the transport's handler: it takes ownership of p if it can run
// here and the queue has room. The caller acknowledges only after nil. It
// refuses with the transport's own *transport.Refusal, the error the sender's
// Send returns, so the in-memory test network behaves like the real one.
func (r *runner) accept(from string, p *lp.Process) error {
	if r.draining.Load() {
		return &transport.Refusal{Reason: transport.ShuttingDown, Detail: r.name + " is shutting down"}
	}
	e := p.ActiveEntry()
	if e == nil {
		return &transport.Refusal{Reason: transport.Malformed, Detail: "the LP has finished; only its origin takes it"}
	}
	if p.Origin == "" {
		return &transport.Refusal{Reason: transport.Malformed, Detail: "the LP names no origin to return to"}
	}
	if !r.eng.Holds(e.Target) {
		return &transport.Refusal{Reason: transport.UnknownComponent, Detail: fmt.Sprintf("%s does not hold %q", r.name, e.Target)}
	}
	switch err := r.q.push(p, false); err {
	case nil:
	case errQueueClosed:
		// drain closed the queue after the check above: its workers may
		// be gone, so the LP must not be acknowledged.
		return &transport.Refusal{Reason: transport.ShuttingDown, Detail: r.name + " is shutting down"}
	default:
		return &transport.Refusal{Reason: transport.Overloaded, Detail: fmt.Sprintf("%s run queue full (%d)", r.name, r.q.cap)}
	}
	r.in.Add(1)
	return nil
}

// load is this node's one-dimensional load: work here over workers, plus
// CPUWeight times the process's CPU use.
func (r *runner) load() float64 {
	return float64(r.q.len()+int(r.running.Load()))/float64(r.workers) + r.sc.CPUWeight*r.cpu.get()
}

func (r *runner) work() {
	defer r.wg.Done()
	for {
		p, open := r.q.pop()
		if p == nil {
			if !open {
				return // closed and empty: nothing can be queued any more
			}
			select {
			case <-r.q.signal:
			case <-r.q.done:
			}
			continue
		}
		r.running.Add(1)
		r.process(p)
		r.running.Add(-1)
	}
}

// process runs steps of p here until it leaves this node: migrated, returned
// to its origin, dropped past its deadline or because this node is stopping
// hard, or requeued for fairness.
func (r *runner) process(p *lp.Process) {
	for steps := 0; ; steps++ {
		if r.stopping(p) {
			return
		}
		if p.Deadline != 0 && time.Now().UnixNano() > p.Deadline {
			// Its origin has given up on it (and may have resent it).
			r.log.Debug("drop LP past its deadline", "lp", p.ID)
			return
		}
		if p.Finished() {
			r.finish(p)
			return
		}
		target := p.ActiveEntry().Target
		if !r.stayHere(target) {
			if r.migrate(p, target) {
				return
			}
			if !r.eng.Holds(target) {
				continue // migrate failed the entry; its parent is active now
			}
		}
		if steps >= maxLocalRun && r.q.len() > 0 {
			r.q.push(p, true)
			return
		}
		if !r.runStep(p) {
			return
		}
	}
}

// stopping reports whether this node is stopping hard (Node.Close, or a
// drain out of time), in which case it drops p: a crashed node loses what it
// holds and the origin resends, which is the fault model. Failing p instead
// would send the origin a failure the request did not cause (the step's
// "canceled", say) and keep the origin from resending.
func (r *runner) stopping(p *lp.Process) bool {
	if r.ctx.Err() == nil {
		return false
	}
	r.log.Debug("drop LP: this node is stopping; its origin resends", "lp", p.ID)
	return true
}

// runStep runs one step here and reports whether p is still this node's.
// The engine applies the outcome itself; an error it returns with the entry
// still unfinished fails the entry, so the caller always sees what happened.
// If the node stopped hard during the step, p is dropped instead: the step's
// outcome may be the stop itself (a step canceled, a closed runtime).
func (r *runner) runStep(p *lp.Process) bool {
	ctx := r.ctx
	if p.Deadline != 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, time.Unix(0, p.Deadline))
		defer cancel()
	}
	before := p.Active
	e := &p.Entries[before]
	steps := e.Steps
	_, err := r.eng.Step(ctx, p)
	if r.stopping(p) {
		return false
	}
	if err == nil || p.Active != before || e.Steps != steps {
		return true // the step ran and its outcome (maybe a failure) is applied
	}
	code := uint32(abi.CodeInternal)
	var ce interface{ StepCode() uint32 }
	if errors.As(err, &ce) {
		code = ce.StepCode()
	}
	r.log.Warn("step did not run", "lp", p.ID, "component", e.Target, "code", code, "err", err)
	_ = p.Fail(code, err.Error())
	p.Record(lp.Step{Node: r.name, Entry: before, Outcome: lp.OutcomeFail}, r.limits.MaxTrace)
	return true
}

// stayHere decides whether target's next step runs on this node: it must hold
// target, and not be markedly more loaded than the other holders.
func (r *runner) stayHere(target string) bool {
	if !r.eng.Holds(target) {
		return false
	}
	if r.draining.Load() {
		return len(r.dir.Holders(target)) == 0
	}
	local := r.load()
	if local <= r.sc.OverloadMin {
		return true
	}
	holders := r.dir.Holders(target)
	if len(holders) == 0 {
		return true
	}
	return local <= r.sc.OverloadRatio*r.meanLoad(holders)
}

func (r *runner) meanLoad(holders []cluster.Peer) float64 {
	var sum float64
	for _, c := range r.candidates(holders) {
		sum += c.Effective()
	}
	return sum / float64(len(holders))
}

// candidates turns holders into scheduler candidates with this node's
// in-flight counts.
func (r *runner) candidates(holders []cluster.Peer) []sched.Candidate {
	out := make([]sched.Candidate, len(holders))
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, h := range holders {
		c := sched.Candidate{Name: h.Name, Load: h.Meta.Load, Workers: h.Meta.Workers}
		if f := r.inflight[h.Name]; f != nil && f.reportAt.Equal(h.Updated) {
			c.InFlight = f.sinceRep
		}
		out[i] = c
	}
	return out
}

func (r *runner) sent(peer cluster.Peer) {
	r.out.Add(1)
	r.mu.Lock()
	defer r.mu.Unlock()
	f := r.inflight[peer.Name]
	if f == nil {
		f = &peerFlight{}
		r.inflight[peer.Name] = f
	}
	if !f.reportAt.Equal(peer.Updated) {
		f.reportAt, f.sinceRep = peer.Updated, 0
	}
	f.sinceRep++
	f.total++
}

// migrate hands p to another holder of target chosen by the policy, trying
// up to Attempts holders. It reports whether p left (or was dropped because
// this node is stopping hard: its sends failed for that). If it did not and this
// node does not hold target, the active entry has been failed: CodeNoComponent
// when nobody holds target, CodeUnavailable when holders refused.
//
// An LP over this node's size limit, or one a holder refused as too large,
// is not offered to another holder: nodes share their limits, so it would
// only be refused again. The entry fails with CodeLimit unless it can run
// here.
func (r *runner) migrate(p *lp.Process, target string) bool {
	holders := r.dir.Holders(target)
	var lastErr error
	if size, limit := p.WireSize(), r.maxTotal(); size > limit && len(holders) > 0 {
		lastErr = fmt.Errorf("%w: %d bytes, over the limit of %d", errTooLarge, size, limit)
		holders = nil
	}
	for attempt := 0; attempt < r.sc.Attempts && len(holders) > 0; attempt++ {
		i := r.policy.Pick(r.candidates(holders))
		if i < 0 {
			break
		}
		h := holders[i]
		if err := r.send(h, p); err != nil {
			lastErr = err
			if tooLarge(err) {
				break
			}
			r.log.Debug("migration failed; re-picking", "lp", p.ID, "to", h.Name, "component", target, "err", err)
			holders = append(holders[:i:i], holders[i+1:]...)
			continue
		}
		r.sent(h)
		return true
	}
	if r.stopping(p) {
		return true
	}
	if r.eng.Holds(target) {
		return false // run it here after all
	}
	if lastErr == nil && !r.heldAnywhere(target) {
		_ = p.Fail(abi.CodeNoComponent, fmt.Sprintf("no live node holds component %q", target))
		return false
	}
	code := uint32(abi.CodeUnavailable)
	msg := fmt.Sprintf("no holder of component %q accepted the LP", target)
	if lastErr != nil {
		msg += ": " + lastErr.Error()
	}
	if tooLarge(lastErr) {
		code = abi.CodeLimit
		msg = fmt.Sprintf("cannot migrate to a holder of component %q: %v", target, lastErr)
	}
	_ = p.Fail(code, msg)
	return false
}

// errTooLarge marks an LP over this node's own size limit.
var errTooLarge = errors.New("LP too large")

func (r *runner) maxTotal() int {
	if r.limits.MaxTotal > 0 {
		return r.limits.MaxTotal
	}
	return lp.DefaultLimits.MaxTotal
}

// tooLarge reports whether err says an LP is larger than its receiver
// takes: this node's own check, or a peer's ERROR frame.
func tooLarge(err error) bool {
	var pe *transport.ProtocolError
	return errors.Is(err, errTooLarge) || errors.As(err, &pe) && pe.Code == transport.ErrFrameTooLarge
}

// heldAnywhere reports whether any live member, fresh or not, holds target.
func (r *runner) heldAnywhere(target string) bool {
	for _, m := range r.dir.Members() {
		if !m.Meta.Gateway && m.Meta.Holds(target) {
			return true
		}
	}
	return false
}

func (r *runner) send(to cluster.Peer, p *lp.Process) error {
	ctx, cancel := context.WithTimeout(r.ctx, sendTimeout)
	defer cancel()
	return r.net.Send(ctx, to.Meta.QUIC, p)
}

// finish returns a finished LP to its origin. If the origin is gone the LP
// is dropped: the origin (a gateway) resends on its own timeout.
func (r *runner) finish(p *lp.Process) {
	if p.Origin == r.name {
		if r.deliver != nil {
			r.deliver(p)
		} else {
			r.log.Warn("drop finished LP: this node is its origin and takes no replies", "lp", p.ID)
		}
		return
	}
	var err error
	for range r.sc.Attempts {
		peer, ok := r.dir.Peer(p.Origin)
		if !ok {
			err = errors.New("origin is not a live member")
			break
		}
		if err = r.send(peer, p); err == nil {
			r.sent(peer)
			return
		}
		if errors.Is(err, context.DeadlineExceeded) {
			break // it did not answer in time: gone, or about to be
		}
		if tooLarge(err) {
			break // resending the same bytes gets the same answer
		}
		if r.ctx.Err() != nil {
			break // this node is stopping hard
		}
	}
	r.log.Info("drop finished LP: origin unreachable; it resends on timeout", "lp", p.ID, "origin", p.Origin, "err", err)
}

// pushOut is the paper's second half of overload handling: when this node is
// markedly more loaded than the other holders, LPs still waiting in its queue
// go to them too. It moves about half the excess, newest first (they would
// wait longest here), and only LPs whose target has less-loaded holders.
func (r *runner) pushOut() {
	r.pushing.Lock()
	defer r.pushing.Unlock()
	if r.draining.Load() {
		return // drain hands the queue on itself
	}
	local := r.load()
	if local <= r.sc.OverloadMin || r.q.len() == 0 {
		return
	}
	budget := min(int((local-r.sc.OverloadMin)*float64(r.workers)/2)+1, r.q.len(), 64)
	pushed := 0
	worth := map[string]bool{} // by target: has holders markedly less loaded
	for _, p := range r.q.takeNewest(budget, func(p *lp.Process) bool {
		t := p.ActiveEntry().Target
		w, ok := worth[t]
		if !ok {
			h := r.dir.Holders(t)
			w = len(h) > 0 && local > r.sc.OverloadRatio*r.meanLoad(h)
			worth[t] = w
		}
		return w
	}) {
		// Once drain waits, stop migrating: it hands these on itself.
		if !r.draining.Load() && r.migrate(p, p.ActiveEntry().Target) {
			pushed++
			continue
		}
		r.q.push(p, true) // nobody took it: it stays ours
	}
	if pushed > 0 {
		r.log.Debug("pushed queued LPs to peers", "n", pushed, "load", local)
	}
}

// drain hands every queued LP to another holder, or runs it here if none
// takes it, then waits for the workers; bounded by ctx.
func (r *runner) drain(ctx context.Context) error {
	r.draining.Store(true)
	// Wait for a push-out in progress to put back what it holds (it stops
	// after its current migration); later ones see draining and do nothing.
	r.pushing.Lock()
	r.pushing.Unlock()
	handed, kept := 0, 0
	for _, p := range r.q.takeNewest(r.q.len()+r.workers, func(*lp.Process) bool { return true }) {
		target := p.ActiveEntry().Target
		if len(r.dir.Holders(target)) > 0 && r.migrate(p, target) {
			handed++
			continue
		}
		// Nobody else holds it (or took it): finish what we can here.
		kept++
		r.q.push(p, true)
	}
	r.q.close()
	done := make(chan struct{})
	go func() { r.wg.Wait(); close(done) }()
	select {
	case <-done:
		r.log.Info("drained", "handed_off", handed, "run_here", kept)
		return nil
	case <-ctx.Done():
		lost := r.q.len() + int(r.running.Load())
		r.cancel() // stop running steps; their LPs are lost and get resent
		<-done
		return fmt.Errorf("drain: %d LPs not finished: %w", lost, ctx.Err())
	}
}

// runQueue is the bounded queue of LPs waiting for a worker. Pushes from the
// transport respect the bound; the node's own requeues do not (it already
// owns those LPs and must not drop them).
//
// Closing is decided under mu together with every push and pop: a push from
// outside fails once the queue is closed, and a worker leaves only when it
// finds the queue closed and empty. So an LP the transport acknowledged is
// always seen by a worker.
type runQueue struct {
	mu     sync.Mutex
	items  []*lp.Process
	cap    int
	closed bool
	signal chan struct{} // a token per push, so a sleeping worker wakes
	done   chan struct{} // closed by close, so every sleeping worker wakes
}

var (
	errQueueFull   = errors.New("run queue full")
	errQueueClosed = errors.New("run queue closed")
)

func newRunQueue(capacity int) *runQueue {
	return &runQueue{cap: capacity, signal: make(chan struct{}, capacity), done: make(chan struct{})}
}

// push queues p. An LP from outside (owned false) is refused with
// errQueueFull or errQueueClosed; the node's own LPs are always queued.
func (q *runQueue) push(p *lp.Process, owned bool) error {
	q.mu.Lock()
	switch {
	case owned:
	case q.closed:
		q.mu.Unlock()
		return errQueueClosed
	case len(q.items) >= q.cap:
		q.mu.Unlock()
		return errQueueFull
	}
	q.items = append(q.items, p)
	q.mu.Unlock()
	// A full token buffer means workers have wake-ups pending already, and
	// a woken worker pops until the queue is empty.
	select {
	case q.signal <- struct{}{}:
	default:
	}
	return nil
}

// pop takes the oldest LP. With none queued it returns nil and whether the
// queue is still open, decided under the same lock as the pushes.
func (q *runQueue) pop() (p *lp.Process, open bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.items) == 0 {
		return nil, !q.closed
	}
	p = q.items[0]
	q.items[0] = nil
	q.items = q.items[1:]
	if len(q.items) == 0 {
		q.items = q.items[:0:0] // let the backing array go
	}
	return p, true
}

func (q *runQueue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items)
}

// takeNewest removes up to n LPs for which keep is true, newest first.
func (q *runQueue) takeNewest(n int, keep func(*lp.Process) bool) []*lp.Process {
	q.mu.Lock()
	defer q.mu.Unlock()
	var out []*lp.Process
	for i := len(q.items) - 1; i >= 0 && len(out) < n; i-- {
		if keep(q.items[i]) {
			out = append(out, q.items[i])
			q.items = append(q.items[:i], q.items[i+1:]...)
		}
	}
	return out
}

// close refuses further pushes from outside and wakes the workers, which
// leave once the queue is empty.
func (q *runQueue) close() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.closed {
		q.closed = true
		close(q.done)
	}
}

// rateWindow turns the in/out counters into per-second rates over the last
// second, sampled every report interval.
type rateWindow struct {
	mu      sync.Mutex
	samples []rateSample
	in, out float64
}

type rateSample struct {
	at      time.Time
	in, out uint64
}

func (w *rateWindow) sample(now time.Time, in, out uint64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.samples = append(w.samples, rateSample{now, in, out})
	for len(w.samples) > 2 && now.Sub(w.samples[1].at) >= time.Second {
		w.samples = w.samples[1:]
	}
	first := w.samples[0]
	if d := now.Sub(first.at).Seconds(); d > 0 {
		w.in, w.out = float64(in-first.in)/d, float64(out-first.out)/d
	}
}

func (w *rateWindow) get() (in, out float64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.in, w.out
}
