package node

import (
	"sort"
	"time"

	"github.com/tsubame-rt/tsubame/internal/adminapi"
	"github.com/tsubame-rt/tsubame/internal/mesh/cluster"
)

// Status returns what GET /v1/status serves.
func (n *Node) Status() adminapi.Status {
	now := time.Now()
	self := n.localMeta()
	st := adminapi.Status{Node: n.cfg.Name, Time: now}
	me := memberStatus(cluster.Peer{Name: n.cfg.Name, Meta: self, Updated: now}, now, n.cfg.Scheduler.StaleAfter)
	me.Self = true
	me.Components = componentStatus(n.Components()) // also while draining
	me.Running = int(n.run.running.Load())
	me.SentTo = n.run.disp.Sent()
	st.Members = append(st.Members, me)
	for _, p := range n.cl.Members() {
		st.Members = append(st.Members, memberStatus(p, now, n.cfg.Scheduler.StaleAfter))
	}
	n.annotateStatus(&st)
	names := make([]string, 0, len(me.Components))
	for _, c := range me.Components {
		names = append(names, c.Name)
	}
	st.Buckets = n.kv.Status(names)
	return st
}

func memberStatus(p cluster.Peer, now time.Time, stale time.Duration) adminapi.MemberStatus {
	m := adminapi.MemberStatus{
		Name: p.Name, Gateway: p.Meta.Gateway, QUIC: p.Meta.QUIC,
		Components: componentStatus(p.Meta.Components),
		Load:       p.Meta.Load, Queue: p.Meta.Queue, Workers: p.Meta.Workers,
		InPerSec: p.Meta.In, OutPerSec: p.Meta.Out,
		ReportAgeMS: -1,
	}
	if !p.Updated.IsZero() {
		age := now.Sub(p.Updated)
		m.ReportAgeMS, m.Fresh = age.Milliseconds(), age <= stale
	}
	return m
}

func componentStatus(cs []cluster.Component) []adminapi.ComponentStatus {
	out := make([]adminapi.ComponentStatus, 0, len(cs))
	for _, c := range cs {
		out = append(out, adminapi.ComponentStatus{Name: c.Name, Hash: c.Hash.Short()})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// annotateStatus adds to st how each member got its components (auto-grow
// installs and when) and the auto-installs this node decided. A member that
// does not answer in time is shown without it.
func (n *Node) annotateStatus(st *adminapi.Status) {
	if len(st.Members) == 0 {
		return
	}
	st.Autogrow = n.grow.History()
	byNode := map[string]adminapi.ComponentsReport{n.cfg.Name: n.hot.Components()}
	for _, rep := range n.hot.PeerReports() {
		byNode[rep.Node] = rep
	}
	for i := range st.Members {
		rep, ok := byNode[st.Members[i].Name]
		if !ok {
			continue
		}
		for j := range st.Members[i].Components {
			c := &st.Members[i].Components[j]
			for _, info := range rep.Components {
				if info.Name == c.Name {
					c.Source, c.Auto, c.InstalledAt = info.Source, info.Auto, info.InstalledAt
				}
			}
		}
	}
}

// adminNode is the node as node/admin sees it.
type adminNode struct{ n *Node }

func (a adminNode) Status() adminapi.Status { return a.n.Status() }
func (a adminNode) Draining() bool          { return a.n.run.draining.Load() }
