package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/tsubame-rt/tsubame/internal/mesh/cluster"
	"github.com/tsubame-rt/tsubame/internal/mesh/sched"
	"github.com/tsubame-rt/tsubame/internal/mesh/transport"
	"github.com/tsubame-rt/tsubame/internal/obs"
	"github.com/tsubame-rt/tsubame/internal/tomlconf"
	"github.com/tsubame-rt/tsubame/lp"
	"github.com/tsubame-rt/tsubame/node/blob"
)

// Host is the node a gateway is embedded in (node.Node satisfies it;
// internal/nodegateway wires the two).
type Host interface {
	Name() string
	Transport() *transport.Transport
	Cluster() *cluster.Cluster
	Blobs() *blob.Store
	// RunHere runs a fresh LP on the node, on the calling goroutine, if its
	// first step belongs there, and reports whether it did.
	RunHere(p *lp.Process) bool
}

// Embed starts a gateway inside node h: it serves HTTP from the node's
// process and is the node as far as the cluster knows (same name,
// certificate, QUIC transport and membership), so its LPs' origin is the
// node. A request whose first step belongs on the node (it holds the route's
// component and is not markedly more loaded than the other holders, the
// rule every later step follows too) runs there, on the request's own
// goroutine, with no QUIC hop; any other goes to a holder chosen as the
// standalone gateway chooses. Routes, limits, resends and duplicate
// suppression, HTTP/1.1, /2 and /3 are the standalone gateway's.
//
// The node must hand every finished LP whose origin it is to Deliver. c's
// cluster-facing keys (name, listen, gossip, seeds, [tls], [membership],
// dispatch.stale_after) are the node's and must be left unset; o.ClusterTLS
// is the node's, for the admin API. Shut the gateway down before the node:
// it leaves the node's parts running.
func Embed(c Config, h Host, o Options) (*Gateway, error) {
	if err := embeddable(c); err != nil {
		return nil, fmt.Errorf("embedded gateway: %w", err)
	}
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("embedded gateway config: %w", err)
	}
	g, err := embed(c, h, o)
	if err != nil {
		return nil, fmt.Errorf("embedded gateway: %w", err)
	}
	return g, nil
}

// Deliver takes a finished LP of an embedded gateway home from its node.
func (g *Gateway) Deliver(p *lp.Process) {
	if err := g.accept(p.Origin, p); err != nil {
		g.log.Warn("dropped a malformed reply", "lp", p.ID, "err", err)
	}
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
			errs = append(errs, &tomlconf.Problem{Key: key, Err: errors.New("is the node's: set it in the node's part of the config, not under [gateway]")})
		}
	}
	return errors.Join(errs...)
}

func embed(c Config, n Host, o Options) (*Gateway, error) {
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
	ctx := context.Background()
	tracer, err := obs.NewTracer(ctx, n.Name(), "gateway", c.Tracing, o.SpanExporter)
	if err != nil {
		return nil, err
	}
	g.obs = g.newObs(o.Metrics, tracer)
	if o.NoObservability {
		g.obs = nil
	}
	g.self = o.Self
	handler := g.Handler()
	if c.HTTP.UI {
		handler = g.withUI(handler)
	}
	if g.srv, err = listenHTTP(c.HTTP, o.HTTPCert, g.set.writeTimeout, handler, log); err != nil {
		_ = tracer.Shutdown(ctx)
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
