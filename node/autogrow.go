package node

import (
	"context"
	"time"

	"github.com/tsubame-rt/tsubame/internal/mesh/cluster"
	"github.com/tsubame-rt/tsubame/node/autogrow"
	"github.com/tsubame-rt/tsubame/node/engine"
	"github.com/tsubame-rt/tsubame/node/install"
)

// housekeep is the node's hot-install housekeeping, once per report
// interval: statistics, auto-grow decisions and idle removals, and the
// collection of old versions.
func (n *Node) housekeep() {
	defer n.loops.Done()
	t := time.NewTicker(n.cfg.Membership.ReportInterval)
	defer t.Stop()
	lastSample, lastCollect := time.Now(), time.Now()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel() // ends auto-installs in flight
	for {
		select {
		case <-n.stop:
			return
		case now := <-t.C:
			if now.Sub(lastSample) >= time.Second {
				n.hot.SampleStats(now)
				lastSample = now
			}
			if !n.run.draining.Load() {
				n.grow.Tick(ctx, now)
			}
			if now.Sub(lastCollect) >= time.Second {
				n.hot.Collect(ctx, now)
				lastCollect = now
			}
		}
	}
}

// growHost is what node/autogrow sees of this node.
type growHost struct {
	name string
	hot  *install.Manager
	run  *runner
	cl   *cluster.Cluster
	eng  *engine.Engine
	obs  *nodeObs
}

var _ autogrow.Host = growHost{}

func (g growHost) Name() string                            { return g.name }
func (g growHost) Load() float64                           { return g.run.load() }
func (g growHost) Peers() []cluster.Peer                   { return g.cl.Peers() }
func (g growHost) Holders(component string) []cluster.Peer { return g.cl.Holders(component) }
func (g growHost) LastStep(component string) time.Time     { return g.hot.LastStep(component) }
func (g growHost) Remove(component string) error {
	err := g.hot.RemoveHere(component)
	if err == nil {
		g.obs.autogrown("remove")
	}
	return err
}
func (g growHost) AutoInstalled() map[string]time.Time { return g.hot.AutoInstalled() }

func (g growHost) Components() []cluster.Component {
	var out []cluster.Component
	for _, c := range g.eng.Components() {
		out = append(out, cluster.Component{Name: c.Name, Hash: c.Hash})
	}
	return out
}

func (g growHost) Install(ctx context.Context, target string, c cluster.Component) error {
	err := g.hot.AutoInstall(ctx, target, c)
	if err == nil {
		g.obs.autogrown("install")
	}
	return err
}
