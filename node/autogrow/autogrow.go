// Package autogrow is the paper's second item of future work: when every live
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
//
// "Saturated" and "idle" look at the sustain window of the load each member
// reports (its run queue plus running steps over its workers, plus a little
// CPU): saturated is at least high in 80% of the window's samples, idle is
// at most low on average, so a momentary dip or spike decides nothing.
//
// The package only decides and keeps the history of what it did. It never
// installs or removes anything itself (Host does, on its node) and never
// talks to the network.
package autogrow

import (
	"context"
	"hash/fnv"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/tsubame-rt/tsubame/internal/adminapi"
	"github.com/tsubame-rt/tsubame/internal/mesh/cluster"
)

// Config is the [autogrow] table of the node config.
type Config struct {
	Enabled bool `toml:"enabled"`
	// High: a holder is saturated while its load, averaged over Sustain, is
	// at least High. Low: a node is idle while its averaged load is at most
	// Low.
	High float64 `toml:"high"`
	Low  float64 `toml:"low"`
	// Sustain is how long every holder must have been saturated.
	Sustain time.Duration `toml:"sustain"`
	// Cooldown is the least time between two auto-installs of one
	// component decided by this node.
	Cooldown time.Duration `toml:"cooldown"`
	// MaxPerMinute bounds the auto-installs this node decides in any minute.
	MaxPerMinute int `toml:"max_per_minute"`
	// IdleRemove: an auto-installed component that has not run a step here
	// for this long is removed again (never the last live holder).
	IdleRemove time.Duration `toml:"idle_remove"`
}

// Host is what auto-grow needs of its node: node.Node backs it; an
// in-memory one backs unit tests.
type Host interface {
	// Name is this node's member name.
	Name() string
	// Load is this node's current load, as it reports it.
	Load() float64
	// Peers are the live members with fresh reports; Holders those of
	// them that hold component.
	Peers() []cluster.Peer
	Holders(component string) []cluster.Peer
	// Components are what this node holds.
	Components() []cluster.Component
	// LastStep is when component last ran a step here (zero: never).
	LastStep(component string) time.Time
	// AutoInstalled lists the components auto-installed here, each with
	// the time its idleness counts from (its install, or this node's
	// start if later: a restart forgets when a component last ran).
	AutoInstalled() map[string]time.Time
	// Install orders node target to install c as an auto-install and
	// waits for the result.
	Install(ctx context.Context, target string, c cluster.Component) error
	// Remove uninstalls component here.
	Remove(component string) error
}

// maxEvents bounds the auto-grow history a node keeps.
const maxEvents = 32

// Grower decides auto-installs and idle removals for one node.
type Grower struct {
	cfg  Config
	host Host
	log  *slog.Logger
	wg   sync.WaitGroup // installs in flight

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

// New returns a Grower for host. log may be nil.
func New(c Config, host Host, log *slog.Logger) *Grower {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Grower{cfg: c, host: host, log: log,
		samples: map[string][]loadSample{}, cooldown: map[string]time.Time{}, busy: map[string]bool{}}
}

// Tick samples the members' loads, starts the installs the rule decides
// (each in its own goroutine, bounded by ctx) and removes idle
// auto-installs. The node calls it once per report interval.
func (g *Grower) Tick(ctx context.Context, now time.Time) {
	self := g.host.Name()
	peers := g.host.Peers()
	g.mu.Lock()
	seen := map[string]bool{self: true}
	g.sample(self, g.host.Load(), now)
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
		for _, c := range g.host.Components() {
			if d, ok := g.decide(c, peers, now); ok {
				decisions = append(decisions, d)
			}
		}
	}
	g.mu.Unlock()
	for _, d := range decisions {
		g.wg.Add(1)
		go g.install(ctx, d)
	}
	g.removeIdle(now)
}

// Wait waits for the installs Tick started; cancel their ctx first.
func (g *Grower) Wait() { g.wg.Wait() }

// sample adds a load report to name's window and drops the ones past it.
// The caller holds g.mu.
func (g *Grower) sample(name string, load float64, now time.Time) {
	s := append(g.samples[name], loadSample{now, load})
	cut := 0
	for cut < len(s) && now.Sub(s[cut].at) > g.cfg.Sustain {
		cut++
	}
	g.samples[name] = append(s[:0], s[cut:]...)
}

// covered reports whether name was watched for at least 90% of the window.
func (g *Grower) covered(name string, now time.Time) bool {
	s := g.samples[name]
	return len(s) > 0 && now.Sub(s[0].at) >= g.cfg.Sustain*9/10
}

// saturated reports whether name's load was at least high in 80% of the
// window's samples: "above high for the sustained interval", tolerating a
// dip between two steps. (A mean would let a short burst of a deep queue
// count as a whole window of saturation.)
func (g *Grower) saturated(name string, now time.Time) bool {
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
func (g *Grower) idle(name string, last float64) bool {
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

// decide applies the rule in the package doc to component c. The
// caller holds g.mu.
func (g *Grower) decide(c cluster.Component, peers []cluster.Peer, now time.Time) (decision, bool) {
	self := g.host.Name()
	holders := []string{self}
	for _, p := range g.host.Holders(c.Name) {
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
	if now.Sub(g.host.LastStep(c.Name)) > g.cfg.Sustain {
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

func (g *Grower) install(ctx context.Context, d decision) {
	defer g.wg.Done()
	g.log.Info("auto-grow: every holder saturated; installing on an idle node", "component", d.component.Name,
		"hash", d.component.Hash.Short(), "target", d.target, "holders", d.holders)
	start := time.Now()
	err := g.host.Install(ctx, d.target, d.component)
	ev := adminapi.AutogrowEvent{Action: "install", Component: d.component.Name, Node: d.target, At: start.UTC(), Millis: time.Since(start).Milliseconds()}
	if err != nil {
		ev.Error = err.Error()
		g.log.Warn("auto-grow install failed", "component", d.component.Name, "target", d.target, "err", err)
	}
	g.mu.Lock()
	g.busy[d.component.Name] = false
	g.record(ev)
	g.mu.Unlock()
}

// record keeps ev in the bounded history. The caller holds g.mu.
func (g *Grower) record(ev adminapi.AutogrowEvent) {
	if len(g.events) == maxEvents {
		g.events = append(g.events[:0], g.events[1:]...)
	}
	g.events = append(g.events, ev)
}

// History returns the recorded auto-grow actions, oldest first.
func (g *Grower) History() []adminapi.AutogrowEvent {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Clone(g.events)
}

// removeIdle removes auto-installed components that have not run a step
// here for idle_remove, unless this node is their last live holder.
func (g *Grower) removeIdle(now time.Time) {
	var idle []string
	for name, since := range g.host.AutoInstalled() {
		last := g.host.LastStep(name)
		if since.After(last) {
			last = since
		}
		if now.Sub(last) >= g.cfg.IdleRemove {
			idle = append(idle, name)
		}
	}
	slices.Sort(idle)
	for _, name := range idle {
		if len(g.host.Holders(name)) == 0 {
			continue // never remove the last live holder
		}
		start := time.Now()
		err := g.host.Remove(name)
		ev := adminapi.AutogrowEvent{Action: "remove", Component: name, Node: g.host.Name(), At: start.UTC(), Millis: time.Since(start).Milliseconds()}
		if err != nil {
			ev.Error = err.Error()
		} else {
			g.log.Info("auto-grow: removed an idle auto-installed component", "component", name, "idle_for", g.cfg.IdleRemove)
		}
		g.mu.Lock()
		g.record(ev)
		g.mu.Unlock()
	}
}
