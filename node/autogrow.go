package node

import (
	"context"
	"time"

	"github.com/tsubame-rt/tsubame/internal/mesh/cluster"
	"github.com/tsubame-rt/tsubame/node/autogrow"
)

// loop is the node's hot-install housekeeping, once per report interval:
// load samples and auto-grow decisions, idle removals, statistics, and the
// collection of old versions.
func (h *hot) loop() {
	defer h.n.loops.Done()
	defer func() {
		h.cancel()
		h.wg.Wait()
		h.grow.Wait()
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
				h.grow.Tick(h.ctx, now)
			}
			if now.Sub(lastCollect) >= collectEvery {
				h.collect(h.ctx, now)
				lastCollect = now
			}
		}
	}
}

// growHost is what node/autogrow sees of this node.
type growHost struct{ h *hot }

var _ autogrow.Host = growHost{}

func (g growHost) Name() string                            { return g.h.n.cfg.Name }
func (g growHost) Load() float64                           { return g.h.n.run.load() }
func (g growHost) Peers() []cluster.Peer                   { return g.h.n.cl.Peers() }
func (g growHost) Holders(component string) []cluster.Peer { return g.h.n.cl.Holders(component) }
func (g growHost) LastStep(component string) time.Time     { return g.h.lastStep(component) }
func (g growHost) Remove(component string) error           { _, err := g.h.removeLocal(component); return err }

func (g growHost) Components() []cluster.Component {
	var out []cluster.Component
	for _, c := range g.h.n.eng.Components() {
		out = append(out, cluster.Component{Name: c.Name, Hash: c.Hash})
	}
	return out
}

func (g growHost) Install(ctx context.Context, target string, c cluster.Component) error {
	_, err := g.h.order(ctx, target, c.Name, &c.Hash, installSource{source: sourceAuto})
	return err
}

func (g growHost) AutoInstalled() map[string]time.Time {
	h := g.h
	h.mu.Lock()
	defer h.mu.Unlock()
	out := map[string]time.Time{}
	for name, e := range h.manifest {
		if e.Auto && !e.Removed {
			out[name] = e.InstalledAt
			if h.started.After(e.InstalledAt) {
				out[name] = h.started
			}
		}
	}
	return out
}
