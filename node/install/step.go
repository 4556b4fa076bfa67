package install

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
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

const (
	// collectEvery paces the collection of old versions.
	collectEvery = time.Second
	// fetchBudget bounds the fetch of a missing version a step waits for.
	fetchBudget = 5 * time.Second
	// fetchPerPeer bounds one peer's answer to a module request.
	fetchPerPeer = 3 * time.Second
	// maxKinds bounds the request kinds counted per component.
	maxKinds = 32
)

// Stepper is the engine as the node's runner sees it: it fetches a missing
// version before giving up on an entry, and counts steps per component.
type Stepper struct{ h *Manager }

// Stepper returns the engine wrapped for the runner.
func (h *Manager) Stepper() Stepper { return Stepper{h} }

// Holds reports whether the engine holds component.
func (s Stepper) Holds(component string) bool { return s.h.eng.Holds(component) }

// Step runs one step of p's active entry (node/engine.Engine.Step).
func (s Stepper) Step(ctx context.Context, p *lp.Process) (lp.Step, error) {
	en := p.ActiveEntry()
	if en == nil {
		return s.h.eng.Step(ctx, p)
	}
	target, kind, saved := en.Target, en.Kind, en.Module
	start := time.Now()
	st, err := s.h.eng.Step(ctx, p)
	if err != nil && !saved.IsZero() && (errors.Is(err, engine.ErrVersionMissing) || errors.Is(err, wasmhost.ErrClosed)) {
		// p is unchanged: fetch the version its continuation needs, then
		// run the step.
		if ferr := s.h.ensure(ctx, saved, target); ferr != nil {
			return st, &versionGoneError{component: target, hash: saved, err: ferr}
		}
		start = time.Now()
		st, err = s.h.eng.Step(ctx, p)
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
func (h *Manager) ensure(ctx context.Context, hash lp.Hash, component string) error {
	ctx, cancel := context.WithTimeout(ctx, fetchBudget)
	defer cancel()
	m, from, err := h.module(ctx, hash, "", component)
	if err != nil {
		h.log.Warn("module version for a resumed entry unavailable", "component", component, "hash", hash.Short(), "err", err)
		return err
	}
	h.vers.Track(hash)
	h.log.Info("loaded an old module version for a resumed entry", "component", component, "hash", hash.Short(),
		"bytes", m.Size(), "fetched_from", from)
	return nil
}

// observe records a step that ran: statistics, and, for a call, that the
// caller's continuation lives in its module version.
func (h *Manager) observe(target, kind string, d time.Duration, st lp.Step, p *lp.Process) {
	now := time.Now()
	s := h.statsFor(target)
	s.steps.Add(1)
	s.busy.Add(int64(d))
	s.last.Store(now.UnixNano())
	s.countKind(kind)
	if st.Outcome != lp.OutcomeCall || st.Entry < 0 || int(st.Entry) >= len(p.Entries) {
		return
	}
	h.vers.Saved(p.Entries[st.Entry].Module, p.Deadline, now)
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

func (h *Manager) statsFor(name string) *compStats {
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

// SampleStats turns the counters into rates, once a second.
func (h *Manager) SampleStats(now time.Time) {
	workers := float64(max(h.workers, 1))
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

// LastStep returns when component last ran a step here (zero: never).
func (h *Manager) LastStep(component string) time.Time {
	if x, ok := h.stats.Load(component); ok {
		if t := x.(*compStats).last.Load(); t != 0 {
			return time.Unix(0, t)
		}
	}
	return time.Time{}
}

// queued scans the run queue: LPs waiting per active component, and the
// module versions their unfinished entries need.
func (h *Manager) queued() (map[string]int, map[lp.Hash]int) {
	byTarget, refs := map[string]int{}, map[lp.Hash]int{}
	h.queue.Each(func(p *lp.Process) {
		if e := p.ActiveEntry(); e != nil {
			byTarget[e.Target]++
		}
		for i := range p.Entries {
			if en := &p.Entries[i]; !en.Module.IsZero() && !en.State.Finished() {
				refs[en.Module]++
			}
		}
	})
	return byTarget, refs
}

// pinned returns the versions that are never collected: current ones and
// those the manifest names. The caller holds h.mu.
func (h *Manager) pinned() map[lp.Hash]bool {
	pin := map[lp.Hash]bool{}
	for _, c := range h.eng.Components() {
		pin[c.Hash] = true
	}
	for _, e := range h.manifest {
		if hash, err := store.ParseHash(e.Hash); err == nil && !e.Removed {
			pin[hash] = true
		}
	}
	return pin
}

// Collect drops the old versions nothing needs any more (node/versions
// says which), from the runtime and from the store.
func (h *Manager) Collect(ctx context.Context, now time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	_, refs := h.queued()
	stored, err := h.store.List()
	if err != nil {
		h.log.Warn("module store", "err", err)
	}
	for _, hash := range h.vers.Collect(now, stored, h.pinned(), refs) {
		_ = h.rt.Drop(ctx, hash)
		if err := h.store.Delete(hash); err != nil {
			h.log.Warn("module store", "err", err)
		}
		h.vers.Forget(hash)
		h.log.Info("old module version dropped", "hash", hash.Short())
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
func (h *Manager) fetch(ctx context.Context, hash lp.Hash, prefer, component string) ([]byte, string, error) {
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

func (h *Manager) fetchFrom(ctx context.Context, hash lp.Hash, prefer, component string) ([]byte, string, error) {
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
	for _, m := range h.cl.Members() {
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
		b, err := h.net.Request(pctx, p.addr, transport.RequestModule, hash[:], h.maxBytes)
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
			h.log.Warn("peer sent a module that does not match the hash asked for; refused", "peer", p.name,
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

// Steps is how many steps of component ran here since the node started.
func (h *Manager) Steps(component string) uint64 {
	if x, ok := h.stats.Load(component); ok {
		return x.(*compStats).steps.Load()
	}
	return 0
}
