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
	"github.com/tsubame-rt/tsubame/internal/mesh/dispatch"
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

// directory is the node's view of the cluster: cluster.Cluster.
type directory interface {
	dispatch.Directory
	Peer(name string) (cluster.Peer, bool)
}

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
	disp    *dispatch.Dispatcher
	dir     directory
	sc      SchedulerConfig
	workers int
	limits  lp.Limits
	// deliver receives finished LPs whose origin is this node (nil: drop).
	deliver func(*lp.Process)
	// obs records metrics, spans and journeys (observe.go); nil records
	// nothing.
	obs *nodeObs

	q        *runQueue
	running  atomic.Int64
	draining atomic.Bool
	ctx      context.Context // canceled only when a shutdown runs out of time
	cancel   context.CancelFunc
	wg       sync.WaitGroup

	in, out atomic.Uint64 // LPs accepted, LPs handed on
	cpu     cpuSampler
	rates   rateWindow

	// pushing is held by a push-out while it has LPs out of the queue, and
	// taken by drain before it empties and closes the queue: what the
	// push-out could not hand on must be back in the queue by then, or no
	// worker would be left to run it.
	pushing sync.Mutex
}

func newRunner(name string, sc SchedulerConfig, workers int, q *runQueue, limits lp.Limits, eng stepper, net dispatch.Sender, dir directory, log *slog.Logger) (*runner, error) {
	pol, err := sched.New(sc.Policy)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &runner{
		name: name, log: log, eng: eng, dir: dir, sc: sc,
		workers: workers, limits: limits,
		q:   q,
		ctx: ctx, cancel: cancel,
	}
	r.disp = dispatch.New(dispatch.Config{
		Policy: pol, Attempts: sc.Attempts, MaxBytes: limits.MaxTotal, Logger: log,
		Observe: func(p *lp.Process, took time.Duration, err error) { r.obs.observeSend(p, took, err) },
	}, net, dir)
	return r, nil
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
	if e == nil && p.Origin == r.name && r.deliver != nil {
		// Coming home to the gateway this node embeds.
		r.deliver(p)
		return nil
	}
	if e == nil {
		return &transport.Refusal{Reason: transport.Malformed, Detail: "the LP has finished; only its origin takes it"}
	}
	if p.Origin == "" {
		return &transport.Refusal{Reason: transport.Malformed, Detail: "the LP names no origin to return to"}
	}
	if !r.eng.Holds(e.Target) {
		return r.obs.refused(&transport.Refusal{Reason: transport.UnknownComponent, Detail: fmt.Sprintf("%s does not hold %q", r.name, e.Target)})
	}
	switch err := r.q.push(p, false); err {
	case nil:
	case errQueueClosed:
		// drain closed the queue after the check above: its workers may
		// be gone, so the LP must not be acknowledged.
		return &transport.Refusal{Reason: transport.ShuttingDown, Detail: r.name + " is shutting down"}
	default:
		return r.obs.refused(&transport.Refusal{Reason: transport.Overloaded, Detail: fmt.Sprintf("%s run queue full (%d)", r.name, r.q.cap)})
	}
	r.in.Add(1)
	r.obs.accepted()
	return nil
}

// runHere runs p, an LP that starts on this node (its embedded gateway
// made it), on the calling goroutine, if its first step belongs here: this
// node holds the component and is not markedly more loaded than the other
// holders (stayHere). Then it returns true once p has left the calling
// goroutine: finished and delivered, migrated, or queued. Otherwise it
// returns false and p is still the caller's.
//
// Running on the caller spares the request two goroutine hand-offs (into the
// run queue and out to the waiting caller); the wasm instance pool bounds how
// many steps run at once, and running counts the LP in the load as a worker
// would.
func (r *runner) runHere(p *lp.Process) bool {
	e := p.ActiveEntry()
	if e == nil || r.draining.Load() || !r.stayHere(e.Target) {
		return false
	}
	r.in.Add(1)
	r.running.Add(1)
	r.process(p, nanotime())
	r.running.Add(-1)
	return true
}

// load is this node's one-dimensional load: work here over workers, plus
// CPUWeight times the process's CPU use.
func (r *runner) load() float64 {
	return float64(r.q.len()+int(r.running.Load()))/float64(r.workers) + r.sc.CPUWeight*r.cpu.get()
}

func (r *runner) work() {
	defer r.wg.Done()
	for {
		p, at, open := r.q.pop()
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
		r.process(p, at)
		r.running.Add(-1)
	}
}

// process runs steps of p here until it leaves this node: migrated, returned
// to its origin, dropped past its deadline or because this node is stopping
// hard, or requeued for fairness. queued is when p entered the run queue
// (monotonic nanoseconds, nanotime), for its queue wait.
func (r *runner) process(p *lp.Process, queued int64) {
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
			before := p.Active
			reason := lp.MoveOverloaded
			if !r.eng.Holds(target) {
				reason = lp.MoveNotHeld
			}
			if r.migrate(p, target, reason) {
				return
			}
			if !r.eng.Holds(target) && p.Active != before {
				continue // migrate failed the entry; its parent is active now
			}
			// Held here after all, or an orphaned resume (migrate): run here.
		}
		if steps >= maxLocalRun && r.q.len() > 0 {
			r.q.push(p, true)
			return
		}
		wait := time.Duration(-1) // not queued before this step
		if steps == 0 {
			wait = time.Duration(nanotime() - queued)
		}
		if !r.runStep(p, wait) {
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
func (r *runner) runStep(p *lp.Process, wait time.Duration) bool {
	ctx := r.ctx
	if p.Deadline != 0 {
		ctx = lpDeadline{r.ctx, time.Unix(0, p.Deadline)}
	}
	before := p.Active
	e := &p.Entries[before]
	steps := e.Steps
	r.obs.stayed(p)
	s, err := r.eng.Step(ctx, p)
	if r.stopping(p) {
		return false
	}
	if err == nil || p.Active != before || e.Steps != steps {
		r.obs.stepped(p, e.Target, &s, wait)
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

// lpDeadline is the runner's context carrying an LP's deadline. The step's
// own timer (wasmhost's, reused per instance) stops the step at it, so a
// step needs no context timer of its own: context.WithDeadline made one,
// and a cancel context, per step. Err stays nil past the deadline; what
// runs under it bounds its waits by Deadline.
type lpDeadline struct {
	context.Context
	at time.Time
}

func (c lpDeadline) Deadline() (time.Time, bool) { return c.at, true }

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
	return local <= r.sc.OverloadRatio*r.disp.MeanLoad(holders)
}

// migrate hands p to another holder of target through the dispatcher, for
// reason (recorded on the step that ran here last). It reports whether p
// left (or was dropped because this node is stopping hard: its sends failed
// for that). If it did not and this node does not hold target, the active
// entry has been failed: CodeNoComponent when nobody holds target, CodeLimit
// when p is too large for any holder (nodes share their limits),
// CodeUnavailable when holders refused; except an entry that resumes in a
// saved version when nobody holds target, which is left for this node to run
// in that version.
func (r *runner) migrate(p *lp.Process, target string, reason lp.Move) bool {
	mark := r.obs.leaving(p, reason)
	_, err := r.disp.Dispatch(r.ctx, p, time.Time{})
	if err == nil {
		r.out.Add(1)
		r.obs.left(p, mark, reason)
		return true
	}
	r.obs.stay(p, mark)
	if r.stopping(p) {
		return true
	}
	if r.eng.Holds(target) {
		return false // run it here after all
	}
	var lastErr error
	var failed *dispatch.Failed
	switch {
	case errors.Is(err, dispatch.ErrNoHolder) && !p.ActiveEntry().Module.IsZero():
		// An orphaned resume: the component was removed everywhere while
		// this entry was suspended in it. The entry resumes in the version
		// that saved its continuation (ABI.md §7), not in whatever holds the
		// name: it runs here, the stepper fetching that version from a
		// member that keeps it, or failing the entry with code 11 when none
		// does. The entry is left as it is.
		r.log.Debug("resume an entry whose component no node holds, in its saved version", "lp", p.ID,
			"component", target, "version", p.ActiveEntry().Module.Short())
		return false
	case errors.Is(err, dispatch.ErrNoHolder):
		_ = p.Fail(abi.CodeNoComponent, fmt.Sprintf("no live node holds component %q", target))
		return false
	case errors.As(err, &failed):
		lastErr = failed.Last()
	case errors.Is(err, dispatch.ErrTooLarge):
		lastErr = err
	}
	code := uint32(abi.CodeUnavailable)
	msg := fmt.Sprintf("no holder of component %q accepted the LP", target)
	if lastErr != nil {
		msg += ": " + lastErr.Error()
	}
	if dispatch.TooLarge(lastErr) {
		code = abi.CodeLimit
		msg = fmt.Sprintf("cannot migrate to a holder of component %q: %v", target, lastErr)
	}
	_ = p.Fail(code, msg)
	return false
}

// finish returns a finished LP to its origin. If the origin is gone the LP
// is dropped: the origin (a gateway) resends on its own timeout.
func (r *runner) finish(p *lp.Process) {
	mark := r.obs.leaving(p, lp.MoveReturn)
	if p.Origin == r.name {
		if r.deliver != nil {
			r.obs.left(p, mark, lp.MoveReturn)
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
		if err = r.disp.SendTo(r.ctx, peer, p); err == nil {
			r.out.Add(1)
			r.obs.left(p, mark, lp.MoveReturn)
			return
		}
		if errors.Is(err, context.DeadlineExceeded) {
			break // it did not answer in time: gone, or about to be
		}
		if dispatch.TooLarge(err) {
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
			w = len(h) > 0 && local > r.sc.OverloadRatio*r.disp.MeanLoad(h)
			worth[t] = w
		}
		return w
	}) {
		// Once drain waits, stop migrating: it hands these on itself.
		if !r.draining.Load() && r.migrate(p, p.ActiveEntry().Target, lp.MovePushed) {
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
		if len(r.dir.Holders(target)) > 0 && r.migrate(p, target, lp.MoveDrain) {
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
	items  []queued
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
	q.items = append(q.items, queued{p, nanotime()})
	q.mu.Unlock()
	// A full token buffer means workers have wake-ups pending already, and
	// a woken worker pops until the queue is empty.
	select {
	case q.signal <- struct{}{}:
	default:
	}
	return nil
}

// queued is an LP in the run queue and when it was pushed (nanotime).
type queued struct {
	p  *lp.Process
	at int64
}

// nanotime is a monotonic clock reading in nanoseconds, for queue waits.
func nanotime() int64 { return int64(time.Since(epoch)) }

var epoch = time.Now()

// pop takes the oldest LP and when it was queued. With none queued it
// returns nil and whether the queue is still open, decided under the same
// lock as the pushes.
func (q *runQueue) pop() (p *lp.Process, at int64, open bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.items) == 0 {
		return nil, 0, !q.closed
	}
	it := q.items[0]
	q.items[0] = queued{}
	q.items = q.items[1:]
	if len(q.items) == 0 {
		q.items = q.items[:0:0] // let the backing array go
	}
	return it.p, it.at, true
}

// Each calls f for every queued LP, under the queue's lock (install.Queue).
func (q *runQueue) Each(f func(*lp.Process)) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, it := range q.items {
		f(it.p)
	}
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
		if keep(q.items[i].p) {
			out = append(out, q.items[i].p)
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
