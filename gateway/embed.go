package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"

	"github.com/tsubame-rt/tsubame/internal/mesh/pki"
	"github.com/tsubame-rt/tsubame/internal/mesh/sched"
	"github.com/tsubame-rt/tsubame/lp"
	"github.com/tsubame-rt/tsubame/node"
)

// StartNode starts a node that serves HTTP itself: node nc with a gateway
// gc embedded in the same process. The gateway is the node as far as the
// cluster knows (same name, certificate, QUIC transport and membership), so
// its LPs' origin is the node and replies finishing elsewhere come back to
// it like any LP. A request whose first step belongs on this node (it holds
// the route's component and is not markedly more loaded than the other
// holders, the rule every later step follows too) runs here, on the request's
// own goroutine, with no QUIC hop; any other goes to a holder chosen as the
// standalone gateway chooses. Everything else (routes, limits, resends and
// duplicate suppression, HTTP/1.1, /2 and /3) is the standalone gateway's.
//
// gc's cluster-facing keys (name, listen, gossip, seeds, [tls],
// [membership], dispatch.stale_after) are the node's and must be left
// unset. no.Deliver is taken over. Shutdown the gateway first, then the
// node. On error nothing is left running.
func StartNode(ctx context.Context, nc node.Config, gc Config, no node.Options, o Options) (*node.Node, *Gateway, error) {
	if err := embeddable(gc); err != nil {
		return nil, nil, fmt.Errorf("embedded gateway: %w", err)
	}
	if err := gc.Validate(); err != nil {
		return nil, nil, fmt.Errorf("embedded gateway config: %w", err)
	}
	// The node delivers finished LPs from the moment it starts; none can be
	// ours before the gateway exists, as it has sent nothing.
	var core atomic.Pointer[Gateway]
	no.Deliver = func(p *lp.Process) {
		if g := core.Load(); g != nil {
			if err := g.accept(p.Origin, p); err != nil {
				g.log.Warn("dropped a malformed reply", "lp", p.ID, "err", err)
			}
		}
	}
	if no.Logger == nil {
		no.Logger = o.Logger
	}
	n, err := node.New(ctx, nc, no)
	if err != nil {
		return nil, nil, err
	}
	if o.ClusterTLS == nil {
		o.ClusterTLS = no.TLS // the admin API serves with the node's certificate
	}
	if o.ClusterTLS == nil && gc.Admin.TokenFile != "" {
		if o.ClusterTLS, err = pki.LoadTLSConfig(nc.TLS.CA, nc.TLS.Cert, nc.TLS.Key); err != nil {
			n.Close()
			return nil, nil, fmt.Errorf("embedded gateway: %w", err)
		}
	}
	g, err := embed(gc, n, o)
	if err != nil {
		n.Close()
		return nil, nil, fmt.Errorf("embedded gateway: %w", err)
	}
	core.Store(g)
	return n, g, nil
}

// embeddable rejects the keys an embedded gateway takes from its node.
func embeddable(c Config) error {
	d := DefaultConfig()
	var errs []error
	for key, set := range map[string]bool{
		"name": c.Name != "", "listen": c.Listen != d.Listen, "gossip": c.Gossip != d.Gossip,
		"seeds": len(c.Seeds) > 0, "tls": c.TLS != (TLSFiles{}), "membership.key": c.Membership.Key != "",
		"dispatch.stale_after": c.Dispatch.StaleAfter != d.Dispatch.StaleAfter,
	} {
		if set {
			errs = append(errs, &problem{key: key, err: errors.New("is the node's: set it in the node's part of the config, not under [gateway]")})
		}
	}
	return errors.Join(errs...)
}

func embed(c Config, n *node.Node, o Options) (*Gateway, error) {
	log := o.Logger
	if log == nil {
		log = slog.Default()
	}
	log = log.With("gateway", n.Name())
	policy, err := sched.New(c.Dispatch.Policy)
	if err != nil {
		return nil, err
	}
	g, err := newCore(n.Name(), settingsOf(c), c.Routes, n.Transport(), n.Cluster(), policy, log)
	if err != nil {
		return nil, err
	}
	// The node's blob store keeps the blobs of the LPs it runs and serves them
	// to peers; its own loop sweeps them.
	g.cl, g.tr, g.local, g.blobs = n.Cluster(), n.Transport(), n.RunHere, n.Blobs()
	if g.srv, err = listenHTTP(c.HTTP, o.HTTPCert, g.set.writeTimeout, g.Handler(), log); err != nil {
		return nil, err
	}
	if c.Admin.TokenFile != "" {
		if g.adm, err = startAdmin(c.Admin, o.ClusterTLS, g, log); err != nil {
			_ = g.srv.shutdown(context.Background())
			return nil, err
		}
	}
	log.Info("gateway embedded", "http", g.srv.addr(), "http3", g.srv.udp != nil, "https", g.srv.tls,
		"admin", g.AdminAddr(), "routes", len(c.Routes))
	return g, nil
}
