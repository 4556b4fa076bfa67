// Package nodegateway starts a node that serves HTTP itself: a node with a
// gateway embedded (gateway.Embed), wired so that the node hands the
// gateway's finished LPs to it. It exists so that neither the gateway nor
// the node imports the other.
//
// It never changes what either does: routes, limits and resends are the
// gateway's, scheduling and steps the node's.
package nodegateway

import (
	"context"
	"fmt"
	"github.com/tsubame-rt/tsubame/internal/obs"
	"sync/atomic"

	"github.com/tsubame-rt/tsubame/gateway"
	"github.com/tsubame-rt/tsubame/internal/mesh/pki"
	"github.com/tsubame-rt/tsubame/lp"
	"github.com/tsubame-rt/tsubame/node"
)

// Start starts node nc with gateway gc embedded (see gateway.Embed for what
// gc may set). no.Deliver is taken over. Shut the gateway down first, then
// the node. On error nothing is left running.
func Start(ctx context.Context, nc node.Config, gc gateway.Config, no node.Options, o gateway.Options) (*node.Node, *gateway.Gateway, error) {
	// The node delivers finished LPs from the moment it starts; none can be
	// the gateway's before the gateway exists, as it has sent nothing.
	var core atomic.Pointer[gateway.Gateway]
	no.Deliver = func(p *lp.Process) {
		if g := core.Load(); g != nil {
			g.Deliver(p)
		}
	}
	if no.Logger == nil {
		no.Logger = o.Logger
	}
	if no.Metrics == nil && o.Metrics == nil {
		// One registry for both halves of the process: the node's admin
		// /metrics and the gateway's serve the same figures.
		r := obs.NewRegistry()
		no.Metrics, o.Metrics = r, r
	}
	if o.ClusterTLS == nil {
		o.ClusterTLS = no.TLS // the admin API serves with the node's certificate
	}
	if o.ClusterTLS == nil && gc.Admin.TokenFile != "" {
		var err error
		if o.ClusterTLS, err = pki.LoadTLSConfig(nc.TLS.CA, nc.TLS.Cert, nc.TLS.Key); err != nil {
			return nil, nil, fmt.Errorf("embedded gateway: %w", err)
		}
	}
	n, err := node.New(ctx, nc, no)
	if err != nil {
		return nil, nil, err
	}
	o.Self = func() obs.UIMember { return selfMember(n) }
	g, err := gateway.Embed(gc, n, o)
	if err != nil {
		n.Close()
		return nil, nil, err
	}
	core.Store(g)
	return n, g, nil
}

// selfMember is the node as the dashboard draws it.
func selfMember(n *node.Node) obs.UIMember {
	st := n.Status()
	m := obs.UIMember{Name: n.Name(), Fresh: true, Components: []obs.UIComponent{}}
	if len(st.Members) > 0 {
		me := st.Members[0]
		m.Load, m.Queue, m.Workers = me.Load, me.Queue, me.Workers
		for _, c := range me.Components {
			m.Components = append(m.Components, obs.UIComponent{Name: c.Name, Version: c.Hash})
		}
	}
	return m
}
