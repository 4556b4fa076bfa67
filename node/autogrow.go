package node

import (
	"hash/fnv"
	"slices"
	"sync"
	"time"

	"github.com/tsubame-rt/tsubame/internal/adminapi"
	"github.com/tsubame-rt/tsubame/internal/mesh/cluster"
)

// Auto-grow (the paper's second item of future work): when every live
// holder of a component has been saturated for a while and some node is
// idle, one holder installs the component there; a component auto-installed
// on a node that then stops serving it is removed again.
//
// The decision must not stampede: several saturated holders must not all
// install, nor on the same idle node, nor on every idle node. So
//   - only the holder whose name sorts first among the holders decides
//     (every holder sees the same holders, so exactly one does, except for
//     the moment two views of membership differ);
//   - it installs on one node per decision: the idle node that ranks first
//     by rendezvous hashing of (component, node), which two deciders with
//     the same idle set agree on, and which spreads different components
//     over different idle nodes;
//   - after a decision the component waits cooldown before the next one,
//     and the node decides at most max_per_minute installs a minute;
//   - an install of an identical module under the same name is a no-op, so
//     a duplicate decision costs a round trip, not a second install.
// "Saturated" and "idle" look at the sustain window of the load each member
// reports (its run queue plus running steps over its workers, plus a little
// CPU): saturated is at least high in 80% of the window's samples, idle is
// at most low on average, so a momentary dip or spike decides nothing.

// maxEvents bounds the auto-grow history a node keeps.
const maxEvents = 32

type autogrow struct {
	cfg AutogrowConfig

	mu       sync.Mutex
	samples  map[string][]loadSample // member (self included) -> loads within the window
	cooldown map[string]time.Time    // component -> no decision before
	recent   []time.Time             // decisions within the last minute
	busy     map[string]bool         // component -> an install is in flight
	events   []adminapi.AutogrowEvent
}

type loadSample struct {
	at   time.Time
	load float64
}

func newAutogrow(c AutogrowConfig) *autogrow {
	return &autogrow{cfg: c, samples: map[string][]loadSample{}, cooldown: map[string]time.Time{}, busy: map[string]bool{}}
}

// loop is the node's hot-install housekeeping, once per report interval:
// load samples and auto-grow decisions, idle removals, statistics, and the
// collection of old versions.
func (h *hot) loop() {
	defer h.n.loops.Done()
	defer func() {
		h.cancel()
		h.wg.Wait()
	}()
	if len(h.repairs) > 0 { // the node has joined: peers can be asked
		h.wg.Add(1)
		go h.repair()
	}
	t := time.NewTicker(h.n.cfg.Membership.ReportInterval)
	defer t.Stop()
	lastSample, lastCollect := time.Now(), time.Now()
	for {
		select {
		case <-h.n.stop:
			return
		case now := <-t.C:
			if now.Sub(lastSample) >= time.Second {
				h.sampleStats(now)
				lastSample = now
			}
			if !h.n.run.draining.Load() {
				h.grow.tick(h, now)
			}
			if now.Sub(lastCollect) >= collectEvery {
				h.collect(h.ctx, now)
				lastCollect = now
			}
		}
	}
}

func (g *autogrow) tick(h *hot, now time.Time) {
	self := h.n.cfg.Name
	peers := h.n.cl.Peers()
	g.mu.Lock()
	seen := map[string]bool{self: true}
	g.sample(self, h.n.run.load(), now)
	for _, p := range peers {
		if !p.Meta.Gateway {
			seen[p.Name] = true
			g.sample(p.Name, p.Meta.Load, now)
		}
	}
	for name := range g.samples {
		if !seen[name] {
			delete(g.samples, name)
		}
	}
	var decisions []decision
	if g.cfg.Enabled {
		for _, c := range h.n.eng.Components() {
			if d, ok := g.decide(h, cluster.Component{Name: c.Name, Hash: c.Hash}, peers, now); ok {
				decisions = append(decisions, d)
			}
		}
	}
	g.mu.Unlock()
	for _, d := range decisions {
		h.wg.Add(1)
		go g.install(h, d)
	}
	g.removeIdle(h, now)
}

// sample adds a load report to name's window and drops the ones past it.
// The caller holds g.mu.
func (g *autogrow) sample(name string, load float64, now time.Time) {
	s := append(g.samples[name], loadSample{now, load})
	cut := 0
	for cut < len(s) && now.Sub(s[cut].at) > g.cfg.Sustain {
		cut++
	}
	g.samples[name] = append(s[:0], s[cut:]...)
}

// covered reports whether name was watched for at least 90% of the window.
func (g *autogrow) covered(name string, now time.Time) bool {
	s := g.samples[name]
	return len(s) > 0 && now.Sub(s[0].at) >= g.cfg.Sustain*9/10
}

// saturated reports whether name's load was at least high in 80% of the
// window's samples: "above high for the sustained interval", tolerating a
// dip between two steps. (A mean would let a short burst of a deep queue
// count as a whole window of saturation.)
func (g *autogrow) saturated(name string, now time.Time) bool {
	if !g.covered(name, now) {
		return false
	}
	s, above := g.samples[name], 0
	for _, x := range s {
		if x.load >= g.cfg.High {
			above++
		}
	}
	return above*5 >= len(s)*4
}

// idle reports whether name's load averaged over the window (or its last
// report, if it was not watched yet) is at most low.
func (g *autogrow) idle(name string, last float64) bool {
	s := g.samples[name]
	if len(s) == 0 {
		return last <= g.cfg.Low
	}
	var sum float64
	for _, x := range s {
		sum += x.load
	}
	return sum/float64(len(s)) <= g.cfg.Low
}

type decision struct {
	component cluster.Component
	target    string
	holders   []string
}

// decide applies the rule at the top of this file to component c. The
// caller holds g.mu.
func (g *autogrow) decide(h *hot, c cluster.Component, peers []cluster.Peer, now time.Time) (decision, bool) {
	self := h.n.cfg.Name
	holders := []string{self}
	for _, p := range h.n.cl.Holders(c.Name) {
		holders = append(holders, p.Name)
	}
	for _, name := range holders {
		if !g.saturated(name, now) {
			return decision{}, false
		}
	}
	if slices.Min(holders) != self {
		return decision{}, false // another holder decides
	}
	if now.Sub(h.lastStep(c.Name)) > g.cfg.Sustain {
		return decision{}, false // saturated by other work: this component is not in demand here
	}
	if g.busy[c.Name] || now.Before(g.cooldown[c.Name]) {
		return decision{}, false
	}
	recent := g.recent[:0]
	for _, t := range g.recent {
		if now.Sub(t) < time.Minute {
			recent = append(recent, t)
		}
	}
	g.recent = recent
	if len(g.recent) >= g.cfg.MaxPerMinute {
		return decision{}, false
	}
	target, best := "", uint64(0)
	for _, p := range peers {
		if p.Meta.Gateway || p.Meta.Holds(c.Name) {
			continue
		}
		if !g.idle(p.Name, p.Meta.Load) {
			continue
		}
		if r := rendezvous(c.Name, p.Name); target == "" || r > best {
			target, best = p.Name, r
		}
	}
	if target == "" {
		return decision{}, false
	}
	g.cooldown[c.Name] = now.Add(g.cfg.Cooldown)
	g.recent = append(g.recent, now)
	g.busy[c.Name] = true
	return decision{component: c, target: target, holders: holders}, true
}

// rendezvous ranks node for component: highest random weight hashing.
func rendezvous(component, node string) uint64 {
	f := fnv.New64a()
	f.Write([]byte(component))
	f.Write([]byte{0})
	f.Write([]byte(node))
	return f.Sum64()
}

func (g *autogrow) install(h *hot, d decision) {
	defer h.wg.Done()
	h.n.log.Info("auto-grow: every holder saturated; installing on an idle node", "component", d.component.Name,
		"hash", d.component.Hash.Short(), "target", d.target, "holders", d.holders)
	start := time.Now()
	_, err := h.order(h.ctx, d.target, d.component.Name, &d.component.Hash, installSource{source: sourceAuto})
	ev := adminapi.AutogrowEvent{Action: "install", Component: d.component.Name, Node: d.target, At: start.UTC(), Millis: time.Since(start).Milliseconds()}
	if err != nil {
		ev.Error = err.Error()
		h.n.log.Warn("auto-grow install failed", "component", d.component.Name, "target", d.target, "err", err)
	}
	g.mu.Lock()
	g.busy[d.component.Name] = false
	g.record(ev)
	g.mu.Unlock()
}

// record keeps ev in the bounded history. The caller holds g.mu.
func (g *autogrow) record(ev adminapi.AutogrowEvent) {
	if len(g.events) == maxEvents {
		g.events = append(g.events[:0], g.events[1:]...)
	}
	g.events = append(g.events, ev)
}

// history returns the recorded auto-grow actions, oldest first.
func (g *autogrow) history() []adminapi.AutogrowEvent {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Clone(g.events)
}

// removeIdle removes auto-installed components that have not run a step
// here for idle_remove, unless this node is their last live holder.
func (g *autogrow) removeIdle(h *hot, now time.Time) {
	h.mu.Lock()
	var idle []string
	for name, e := range h.manifest {
		if !e.Auto || e.Removed {
			continue
		}
		// A restart forgets when a component last ran: count from the
		// start, not from the install.
		last := h.lastStep(name)
		for _, t := range []time.Time{e.InstalledAt, h.started} {
			if t.After(last) {
				last = t
			}
		}
		if now.Sub(last) >= g.cfg.IdleRemove {
			idle = append(idle, name)
		}
	}
	h.mu.Unlock()
	for _, name := range idle {
		if len(h.n.cl.Holders(name)) == 0 {
			continue // never remove the last live holder
		}
		start := time.Now()
		_, err := h.removeLocal(name)
		ev := adminapi.AutogrowEvent{Action: "remove", Component: name, Node: h.n.cfg.Name, At: start.UTC(), Millis: time.Since(start).Milliseconds()}
		if err != nil {
			ev.Error = err.Error()
		} else {
			h.n.log.Info("auto-grow: removed an idle auto-installed component", "component", name, "idle_for", g.cfg.IdleRemove)
		}
		g.mu.Lock()
		g.record(ev)
		g.mu.Unlock()
	}
}
