package autogrow

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tsubame-rt/tsubame/internal/mesh/cluster"
)

// fakeHost is a node in an in-memory cluster whose loads the test sets.
type fakeHost struct {
	mu        sync.Mutex
	name      string
	load      float64
	peers     []cluster.Peer
	comps     []cluster.Component
	last      map[string]time.Time
	auto      map[string]time.Time
	installed []string // "component@target"
	removed   []string
}

func (f *fakeHost) Name() string                    { return f.name }
func (f *fakeHost) Load() float64                   { return f.load }
func (f *fakeHost) Peers() []cluster.Peer           { return f.peers }
func (f *fakeHost) Components() []cluster.Component { return f.comps }
func (f *fakeHost) LastStep(c string) time.Time     { return f.last[c] }
func (f *fakeHost) AutoInstalled() map[string]time.Time {
	return f.auto
}
func (f *fakeHost) Holders(c string) []cluster.Peer {
	var out []cluster.Peer
	for _, p := range f.peers {
		if p.Meta.Holds(c) {
			out = append(out, p)
		}
	}
	return out
}
func (f *fakeHost) Install(ctx context.Context, target string, c cluster.Component) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.installed = append(f.installed, c.Name+"@"+target)
	return nil
}
func (f *fakeHost) Remove(c string) error {
	f.removed = append(f.removed, c)
	if c == "broken" {
		return errors.New("cannot")
	}
	return nil
}

func member(name string, load float64, comps ...string) cluster.Peer {
	p := cluster.Peer{Name: name, Meta: cluster.Meta{Load: load}}
	for _, c := range comps {
		p.Meta.Components = append(p.Meta.Components, cluster.Component{Name: c})
	}
	return p
}

var cfg = Config{Enabled: true, High: 1, Low: 0.5, Sustain: time.Second, Cooldown: 10 * time.Second, MaxPerMinute: 2, IdleRemove: time.Minute}

// tickFor ticks g every 100ms over d from start, as the node does.
func tickFor(g *Grower, start time.Time, d time.Duration) time.Time {
	now := start
	for ; now.Sub(start) <= d; now = now.Add(100 * time.Millisecond) {
		g.Tick(context.Background(), now)
	}
	g.Wait()
	return now
}

// Every holder saturated for the window: the first holder by name installs
// on one idle node, the one rendezvous hashing ranks first, and only once
// within the cooldown.
func TestGrowsOnceOntoRendezvousTarget(t *testing.T) {
	start := time.Unix(1000, 0)
	idle := []string{"n3", "n4", "n5"}
	f := &fakeHost{name: "n1", load: 2, comps: []cluster.Component{{Name: "slow"}},
		last: map[string]time.Time{"slow": start.Add(time.Hour)}}
	f.peers = []cluster.Peer{member("n2", 2, "slow")}
	for _, n := range idle {
		f.peers = append(f.peers, member(n, 0))
	}
	g := New(cfg, f, nil)
	tickFor(g, start, 3*time.Second)
	want := slices.MaxFunc(idle, func(a, b string) int {
		ra, rb := rendezvous("slow", a), rendezvous("slow", b)
		return map[bool]int{true: 1, false: -1}[ra > rb]
	})
	if !slices.Equal(f.installed, []string{"slow@" + want}) {
		t.Errorf("installs %v, want one on %s", f.installed, want)
	}
	if h := g.History(); len(h) != 1 || h[0].Action != "install" || h[0].Node != want {
		t.Errorf("history %+v", h)
	}

	// n2 sees the same cluster but is not the first holder: it never decides.
	f2 := &fakeHost{name: "n2", load: 2, comps: f.comps, last: f.last,
		peers: append([]cluster.Peer{member("n1", 2, "slow")}, f.peers[1:]...)}
	g2 := New(cfg, f2, nil)
	tickFor(g2, start, 3*time.Second)
	if len(f2.installed) != 0 {
		t.Errorf("a second holder installed too: %v", f2.installed)
	}
}

// A dip below high in more than a fifth of the window decides nothing.
func TestBriefSaturationDecidesNothing(t *testing.T) {
	start := time.Unix(1000, 0)
	f := &fakeHost{name: "n1", comps: []cluster.Component{{Name: "slow"}},
		last: map[string]time.Time{"slow": start.Add(time.Hour)}, peers: []cluster.Peer{member("n2", 0)}}
	g := New(cfg, f, nil)
	now := start
	for i := range 30 {
		f.load = 2
		if i%3 == 0 {
			f.load = 0.2
		}
		g.Tick(context.Background(), now)
		now = now.Add(100 * time.Millisecond)
	}
	g.Wait()
	if len(f.installed) != 0 {
		t.Errorf("installed %v on a load saturated two thirds of the time", f.installed)
	}
}

// Idle auto-installs are removed, except where this node is the last
// live holder; a failed removal is recorded.
func TestRemovesIdleAutoInstalls(t *testing.T) {
	start := time.Unix(1000, 0)
	f := &fakeHost{name: "n1", last: map[string]time.Time{},
		auto:  map[string]time.Time{"a": start, "b": start, "broken": start, "fresh": start.Add(time.Hour)},
		peers: []cluster.Peer{member("n2", 0, "a", "broken", "fresh")}}
	g := New(cfg, f, nil)
	g.Tick(context.Background(), start.Add(2*time.Minute))
	slices.Sort(f.removed)
	if !slices.Equal(f.removed, []string{"a", "broken"}) {
		t.Errorf("removed %v, want a and broken (b has no other holder, fresh is not idle)", f.removed)
	}
	h := g.History()
	if len(h) != 2 || h[0].Component != "a" || h[0].Error != "" || h[1].Component != "broken" || h[1].Error == "" {
		t.Errorf("history %+v", h)
	}
}
