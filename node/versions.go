package node

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tsubame-rt/tsubame/abi"
	"github.com/tsubame-rt/tsubame/internal/mesh/cluster"
	"github.com/tsubame-rt/tsubame/internal/mesh/transport"
	"github.com/tsubame-rt/tsubame/lp"
	"github.com/tsubame-rt/tsubame/node/engine"
	"github.com/tsubame-rt/tsubame/node/store"
	"github.com/tsubame-rt/tsubame/wasmhost"
)

// The version rule (abi/ABI.md §7): an entry resumes in the module version
// that saved its continuation. This node keeps a version that is no longer
// current loaded, and in its store, while
//   - an LP in its run queue has an unfinished entry saved by it, or
//   - less than keep_old has passed since a step here last saved a
//     continuation in it, or since it stopped being current, or
//   - the deadline of an LP that saved a continuation in it here has not
//     passed (capped at maxKeepForDeadline),
// and drops it at the first collection after none holds. An entry that
// resumes here in a version this node lacks fetches it from a peer first;
// if no live member has it any more the entry fails with
// abi.CodeVersionGone.

const (
	// collectEvery paces the collection of old versions.
	collectEvery = time.Second
	// fetchBudget bounds the fetch of a missing version a step waits for.
	fetchBudget = 5 * time.Second
	// fetchPerPeer bounds one peer's answer to a module request.
	fetchPerPeer = 3 * time.Second
	// maxKeepForDeadline caps how far an LP's deadline can keep a version.
	maxKeepForDeadline = time.Hour
	// maxKinds bounds the request kinds counted per component.
	maxKinds = 32
)

// versions tracks the module versions this node loaded and how long each
// must be kept.
type versions struct {
	until sync.Map // lp.Hash -> *atomic.Int64: keep until (Unix ns)

	mu     sync.Mutex
	loaded map[lp.Hash]struct{}
}

func (v *versions) init() { v.loaded = map[lp.Hash]struct{}{} }

// track records that h is loaded in the runtime.
func (v *versions) track(h lp.Hash) {
	v.mu.Lock()
	v.loaded[h] = struct{}{}
	v.mu.Unlock()
}

// keep makes sure h is kept at least until the Unix time until (ns). It is
// on every call step's path: a lock-free load and, rarely, a CAS.
func (v *versions) keep(h lp.Hash, until int64) {
	x, ok := v.until.Load(h)
	if !ok {
		x, _ = v.until.LoadOrStore(h, new(atomic.Int64))
	}
	u := x.(*atomic.Int64)
	for {
		cur := u.Load()
		if cur >= until || u.CompareAndSwap(cur, until) {
			return
		}
	}
}

// retire starts the keep_old clock of a version that stopped being current.
func (v *versions) retire(h lp.Hash, keepOld time.Duration) {
	v.keep(h, time.Now().Add(keepOld).UnixNano())
}

func (v *versions) untilOf(h lp.Hash) int64 {
	if x, ok := v.until.Load(h); ok {
		return x.(*atomic.Int64).Load()
	}
	return 0
}

func (v *versions) forget(h lp.Hash) {
	v.until.Delete(h)
	v.mu.Lock()
	delete(v.loaded, h)
	v.mu.Unlock()
}

func (v *versions) loadedSet() []lp.Hash {
	v.mu.Lock()
	defer v.mu.Unlock()
	out := make([]lp.Hash, 0, len(v.loaded))
	for h := range v.loaded {
		out = append(out, h)
	}
	return out
}

// hotStepper is the engine as the runner sees it: it fetches a missing
// version before giving up on an entry, and counts steps per component.
type hotStepper struct {
	h   *hot
	eng *engine.Engine
}

func (s hotStepper) Holds(component string) bool { return s.eng.Holds(component) }

func (s hotStepper) Step(ctx context.Context, p *lp.Process) (lp.Step, error) {
	en := p.ActiveEntry()
	if en == nil {
		return s.eng.Step(ctx, p)
	}
	target, kind, saved := en.Target, en.Kind, en.Module
	start := time.Now()
	st, err := s.eng.Step(ctx, p)
	if err != nil && !saved.IsZero() && (errors.Is(err, engine.ErrVersionMissing) || errors.Is(err, wasmhost.ErrClosed)) {
		// p is unchanged: fetch the version its continuation needs, then
		// run the step.
		if ferr := s.h.ensure(ctx, saved, target); ferr != nil {
			return st, &versionGoneError{component: target, hash: saved, err: ferr}
		}
		start = time.Now()
		st, err = s.eng.Step(ctx, p)
	}
	if err == nil {
		s.h.observe(target, kind, time.Since(start), st, p)
	}
	return st, err
}

// versionGoneError fails an entry whose version nobody has any more.
type versionGoneError struct {
	component string
	hash      lp.Hash
	err       error
}

func (e *versionGoneError) Error() string {
	return fmt.Sprintf("module version %s of component %s, which saved this entry's continuation, is gone: %v", e.hash.Short(), e.component, e.err)
}

func (e *versionGoneError) Unwrap() error { return e.err }

// StepCode is what the entry fails with.
func (e *versionGoneError) StepCode() uint32 { return abi.CodeVersionGone }

// ensure loads version hash, from the store or a peer, for an entry of
// component that resumes in it.
func (h *hot) ensure(ctx context.Context, hash lp.Hash, component string) error {
	ctx, cancel := context.WithTimeout(ctx, fetchBudget)
	defer cancel()
	m, from, err := h.module(ctx, hash, "", component)
	if err != nil {
		h.n.log.Warn("module version for a resumed entry unavailable", "component", component, "hash", hash.Short(), "err", err)
		return err
	}
	h.vers.track(hash)
	h.n.log.Info("loaded an old module version for a resumed entry", "component", component, "hash", hash.Short(),
		"bytes", m.Size(), "fetched_from", from)
	return nil
}

// observe records a step that ran: statistics, and, for a call, that the
// caller's continuation lives in its module version.
func (h *hot) observe(target, kind string, d time.Duration, st lp.Step, p *lp.Process) {
	now := time.Now()
	s := h.statsFor(target)
	s.steps.Add(1)
	s.busy.Add(int64(d))
	s.last.Store(now.UnixNano())
	s.countKind(kind)
	if st.Outcome != lp.OutcomeCall || st.Entry < 0 || int(st.Entry) >= len(p.Entries) {
		return
	}
	until := now.Add(h.keepOld).UnixNano()
	if dl := p.Deadline; dl > until {
		until = min(dl, now.Add(maxKeepForDeadline).UnixNano())
	}
	h.vers.keep(p.Entries[st.Entry].Module, until)
}

// compStats are one component's statistics on this node.
type compStats struct {
	steps atomic.Uint64
	busy  atomic.Int64 // ns spent in steps
	last  atomic.Int64 // Unix ns of the last step; 0: none

	kinds  sync.Map // kind -> *atomic.Uint64: lock-free on the step path
	nkinds atomic.Int32

	mu        sync.Mutex
	prevSteps uint64
	prevBusy  int64
	prevAt    time.Time
	rate      float64 // steps per second over the last sample
	load      float64 // share of the node's worker time over the last sample
}

func (h *hot) statsFor(name string) *compStats {
	if x, ok := h.stats.Load(name); ok {
		return x.(*compStats)
	}
	x, _ := h.stats.LoadOrStore(name, &compStats{prevAt: time.Now()})
	return x.(*compStats)
}

// countKind counts a step of kind, for at most maxKinds kinds.
func (s *compStats) countKind(kind string) {
	x, ok := s.kinds.Load(kind)
	if !ok {
		if s.nkinds.Load() >= maxKinds {
			return
		}
		var loaded bool
		if x, loaded = s.kinds.LoadOrStore(kind, new(atomic.Uint64)); !loaded {
			s.nkinds.Add(1)
		}
	}
	x.(*atomic.Uint64).Add(1)
}

// kindCounts returns the counts per kind.
func (s *compStats) kindCounts() map[string]uint64 {
	out := map[string]uint64{}
	s.kinds.Range(func(k, v any) bool {
		out[k.(string)] = v.(*atomic.Uint64).Load()
		return true
	})
	return out
}

// sampleStats turns the counters into rates, once a second.
func (h *hot) sampleStats(now time.Time) {
	workers := float64(max(h.n.cfg.Workers, 1))
	h.stats.Range(func(_, x any) bool {
		s := x.(*compStats)
		steps, busy := s.steps.Load(), s.busy.Load()
		s.mu.Lock()
		if dt := now.Sub(s.prevAt).Seconds(); dt > 0 {
			s.rate = float64(steps-s.prevSteps) / dt
			s.load = float64(busy-s.prevBusy) / 1e9 / dt / workers
		}
		s.prevSteps, s.prevBusy, s.prevAt = steps, busy, now
		s.mu.Unlock()
		return true
	})
}

// lastStep returns when component last ran a step here (zero: never).
func (h *hot) lastStep(component string) time.Time {
	if x, ok := h.stats.Load(component); ok {
		if t := x.(*compStats).last.Load(); t != 0 {
			return time.Unix(0, t)
		}
	}
	return time.Time{}
}

// queued scans the run queue: LPs waiting per active component, and the
// module versions their unfinished entries need.
func (h *hot) queued() (map[string]int, map[lp.Hash]int) {
	byTarget, refs := map[string]int{}, map[lp.Hash]int{}
	q := h.n.run.q
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, p := range q.items {
		if e := p.ActiveEntry(); e != nil {
			byTarget[e.Target]++
		}
		for i := range p.Entries {
			if en := &p.Entries[i]; !en.Module.IsZero() && !en.State.Finished() {
				refs[en.Module]++
			}
		}
	}
	return byTarget, refs
}

// pinned returns the versions that are never collected: current ones and
// those the manifest names. The caller holds h.mu.
func (h *hot) pinned() map[lp.Hash]bool {
	pin := map[lp.Hash]bool{}
	for _, c := range h.n.eng.Components() {
		pin[c.Hash] = true
	}
	for _, e := range h.manifest {
		if hash, err := store.ParseHash(e.Hash); err == nil && !e.Removed {
			pin[hash] = true
		}
	}
	return pin
}

// collect drops the old versions nothing needs any more (see the rule at
// the top of this file), from the runtime and from the store.
func (h *hot) collect(ctx context.Context, now time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	pin := h.pinned()
	_, refs := h.queued()
	stored, err := h.store.List()
	if err != nil {
		h.n.log.Warn("module store", "err", err)
	}
	cands := append(stored, h.vers.loadedSet()...)
	for i, hash := range cands {
		if slices.Contains(cands[:i], hash) || pin[hash] || refs[hash] > 0 {
			continue
		}
		until := h.vers.untilOf(hash)
		if until == 0 {
			// Seen for the first time (left over from a previous run, or
			// loaded from a file): start its clock.
			h.vers.keep(hash, now.Add(h.keepOld).UnixNano())
			continue
		}
		if now.UnixNano() < until {
			continue
		}
		_ = h.n.rt.Drop(ctx, hash)
		if err := h.store.Delete(hash); err != nil {
			h.n.log.Warn("module store", "err", err)
		}
		h.vers.forget(hash)
		h.n.log.Info("old module version dropped", "hash", hash.Short())
	}
}

// fetchCall lets concurrent fetches of one version share one transfer.
type fetchCall struct {
	done chan struct{}
	b    []byte
	from string
	err  error
}

// fetch gets module hash from a peer: prefer first, then the members that
// advertise it, then the holders of component, then everyone else. Bytes
// that do not hash to hash are refused: a peer is only trusted to send
// what it was asked for.
func (h *hot) fetch(ctx context.Context, hash lp.Hash, prefer, component string) ([]byte, string, error) {
	h.fetchMu.Lock()
	if c := h.fetching[hash]; c != nil {
		h.fetchMu.Unlock()
		select {
		case <-c.done:
			return c.b, c.from, c.err
		case <-ctx.Done():
			return nil, "", ctx.Err()
		}
	}
	c := &fetchCall{done: make(chan struct{})}
	h.fetching[hash] = c
	h.fetchMu.Unlock()
	c.b, c.from, c.err = h.fetchFrom(ctx, hash, prefer, component)
	h.fetchMu.Lock()
	delete(h.fetching, hash)
	h.fetchMu.Unlock()
	close(c.done)
	return c.b, c.from, c.err
}

func (h *hot) fetchFrom(ctx context.Context, hash lp.Hash, prefer, component string) ([]byte, string, error) {
	if h.n.cl == nil || h.n.tr == nil {
		return nil, "", fmt.Errorf("module %s is not here and the node has not joined a cluster yet", hash.Short())
	}
	rank := func(m peerRef) int {
		switch {
		case m.name == prefer:
			return 0
		case m.advertises(hash):
			return 1
		case m.holds(component):
			return 2
		}
		return 3
	}
	var peers []peerRef
	for _, m := range h.n.cl.Members() {
		if m.Meta.Gateway && m.Name != prefer {
			continue
		}
		peers = append(peers, peerRef{name: m.Name, addr: m.Meta.QUIC, comps: m.Meta.Components})
	}
	sort.SliceStable(peers, func(i, j int) bool { return rank(peers[i]) < rank(peers[j]) })
	var tried []string
	for _, p := range peers {
		if ctx.Err() != nil {
			break
		}
		pctx, cancel := context.WithTimeout(ctx, fetchPerPeer)
		b, err := h.n.tr.Request(pctx, p.addr, transport.RequestModule, hash[:], h.maxBytes)
		cancel()
		var re *transport.RequestError
		switch {
		case errors.As(err, &re) && re.Status == transport.StatusNotFound:
			tried = append(tried, p.name+": does not have it")
			continue
		case err != nil:
			tried = append(tried, p.name+": "+err.Error())
			continue
		}
		if got := lp.Hash(sha256.Sum256(b)); got != hash {
			h.n.log.Warn("peer sent a module that does not match the hash asked for; refused", "peer", p.name,
				"asked", hash.Short(), "got", got.Short(), "bytes", len(b))
			tried = append(tried, fmt.Sprintf("%s: sent %d bytes whose SHA-256 is %s, not %s: refused (hash mismatch)",
				p.name, len(b), got.Short(), hash.Short()))
			continue
		}
		return b, p.name, nil
	}
	if len(tried) == 0 {
		return nil, "", fmt.Errorf("module %s is not here and no live member could be asked for it", hash.Short())
	}
	return nil, "", fmt.Errorf("module %s is not here and no peer supplied it (%s)", hash.Short(), strings.Join(tried, "; "))
}

// peerRef is a member as fetch ranks it.
type peerRef struct {
	name, addr string
	comps      []cluster.Component
}

func (p peerRef) advertises(h lp.Hash) bool {
	for _, c := range p.comps {
		if c.Hash == h {
			return true
		}
	}
	return false
}

func (p peerRef) holds(name string) bool {
	for _, c := range p.comps {
		if c.Name == name {
			return true
		}
	}
	return false
}
