package gateway

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/tsubame-rt/tsubame/internal/obs"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/tsubame-rt/tsubame/node/blob"

	"github.com/tsubame-rt/tsubame/internal/mesh/cluster"
	"github.com/tsubame-rt/tsubame/internal/mesh/pki"
	"github.com/tsubame-rt/tsubame/internal/mesh/sched"
	"github.com/tsubame-rt/tsubame/internal/mesh/transport"
	"github.com/tsubame-rt/tsubame/internal/tomlconf"
	"github.com/tsubame-rt/tsubame/lp"
)

// Options are what a caller hands over in memory instead of files: `tsubame
// demo` and tests, which keep their CA in memory.
type Options struct {
	// ClusterTLS is the mutual-TLS configuration for the QUIC transport
	// (node/pki.TLSConfig); it replaces [tls].
	ClusterTLS *tls.Config
	// HTTPCert holds the certificate clients see; it replaces http.cert and
	// http.key.
	HTTPCert *tls.Config
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Metrics, if set, is a registry shared by the members of this process
	// (the demo): the gateway registers there with a member label, and its
	// /metrics serves the whole registry.
	Metrics *prometheus.Registry
	// SpanExporter, if set, receives the request spans instead of the OTLP
	// exporter [tracing] configures (tests, benchmarks).
	SpanExporter sdktrace.SpanExporter
	// Self, for an embedded gateway, is its node as the dashboard draws it
	// (the cluster's member list leaves out the member asking).
	Self func() obs.UIMember
	// NoObservability turns metrics, spans and the journey ring off: the
	// baseline the cost of observing is measured against.
	NoObservability bool
}

// New starts a gateway: it listens on the QUIC transport, joins the cluster
// as a member holding no components, and then opens the HTTP listeners. On
// error everything already started is stopped again.
func New(ctx context.Context, c Config, o Options) (g *Gateway, err error) {
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("gateway config: %w", err)
	}
	log := o.Logger
	if log == nil {
		log = slog.Default()
	}
	clusterTLS, httpCert, name, err := identity(c, o, log)
	if err != nil {
		return nil, err
	}
	policy, err := sched.New(c.Dispatch.Policy)
	if err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	key, _ := tomlconf.SecretKey(c.Membership.Key) // checked by Validate
	log = log.With("gateway", name)

	var cleanup []func()
	defer func() {
		if err != nil {
			for i := len(cleanup) - 1; i >= 0; i-- {
				cleanup[i]()
			}
		}
	}()

	// The transport and the cluster come first, so the core is built whole;
	// until it is, an LP coming home is refused (none can: nothing was sent).
	var core atomic.Pointer[Gateway]
	accept := transport.HandlerFunc(func(ctx context.Context, from string, p *lp.Process) error {
		g := core.Load()
		if g == nil {
			return &transport.Refusal{Reason: transport.ShuttingDown, Detail: name + " is starting"}
		}
		return g.acceptLP(from, p)
	})
	blobs := blob.New(name, c.Blobs.Fit(c.Limits.MaxLPBytes+transport.FrameSlack), nil, nil, log)
	tcfg := transportConfig(c, clusterTLS, accept, log)
	tcfg.Requests = blobs // a gateway serves its LPs' blobs and takes them back
	tr, err := transport.Listen(ctx, tcfg)
	if err != nil {
		return nil, fmt.Errorf("gateway: quic transport: %w", err)
	}
	cleanup = append(cleanup, func() { tr.Close() })
	sweepCtx, stopSweep := context.WithCancel(context.Background())
	cleanup = append(cleanup, stopSweep)
	go blobs.Run(sweepCtx, time.Second)

	quicAddr := tr.Addr()
	cl, err := cluster.Join(ctx, cluster.Config{
		Name: name, Bind: c.Gossip, Seeds: c.Seeds, StaleAfter: c.Dispatch.StaleAfter,
		SecretKey: key, Logger: log,
	}, func() cluster.Meta { return cluster.Meta{QUIC: quicAddr, Gateway: true} })
	if err != nil {
		return nil, fmt.Errorf("gateway: join cluster: %w", err)
	}
	cleanup = append(cleanup, func() { cl.Close() })
	if g, err = newCore(name, settingsOf(c), c.Routes, tr, cl, policy, log); err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	g.cl, g.tr = cl, tr
	g.blobs, g.stopSweep = blobs, stopSweep
	tracer, err := obs.NewTracer(ctx, name, "gateway", c.Tracing, o.SpanExporter)
	if err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	g.obs = g.newObs(o.Metrics, tracer)
	if o.NoObservability {
		g.obs = nil
	}
	core.Store(g)

	handler := g.Handler()
	if c.HTTP.UI {
		handler = g.withUI(handler)
	}
	if g.srv, err = listenHTTP(c.HTTP, httpCert, g.set.writeTimeout, handler, log); err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	if c.Admin.TokenFile != "" {
		cleanup = append(cleanup, func() { g.srv.shutdown(context.Background()) })
		if g.adm, err = startAdmin(c.Admin, clusterTLS, g, log); err != nil {
			return nil, fmt.Errorf("gateway: %w", err)
		}
	}
	log.Info("gateway started", "http", g.srv.addr(), "http3", g.srv.udp != nil, "https", g.srv.tls, "admin", g.AdminAddr(),
		"quic", quicAddr, "gossip", cl.Addr(), "routes", len(c.Routes))
	return g, nil
}

// identity loads the gateway's cluster TLS ([tls] unless o gives it) and its
// client-facing certificate, and returns its member name: its certificate's.
func identity(c Config, o Options, log *slog.Logger) (clusterTLS, httpCert *tls.Config, name string, err error) {
	clusterTLS = o.ClusterTLS
	if clusterTLS == nil {
		if c.TLS.CA == "" {
			return nil, nil, "", errors.New("gateway: no cluster TLS: set [tls] ca, cert and key (see `tsubame ca`)")
		}
		if clusterTLS, err = pki.LoadTLSConfig(c.TLS.CA, c.TLS.Cert, c.TLS.Key); err != nil {
			return nil, nil, "", fmt.Errorf("gateway: %w", err)
		}
	}
	httpCert = o.HTTPCert
	if httpCert == nil && c.HTTP.Cert != "" {
		pair, err := tls.LoadX509KeyPair(c.HTTP.Cert, c.HTTP.Key)
		if err != nil {
			return nil, nil, "", fmt.Errorf("gateway: http certificate: %w", err)
		}
		httpCert = &tls.Config{Certificates: []tls.Certificate{pair}}
	}
	certName, err := pki.LocalName(clusterTLS)
	if err != nil {
		return nil, nil, "", fmt.Errorf("gateway: %w", err)
	}
	switch role, _ := pki.LocalRole(clusterTLS); role {
	case pki.RoleOperator:
		return nil, nil, "", fmt.Errorf("gateway: certificate %q has role operator, which may not submit LPs; issue one with `tsubame ca issue --role gateway`", certName)
	case pki.RoleNode, pki.RoleLegacy:
		log.Warn("the gateway's cluster certificate has role "+role.String()+": it may also install and remove components on nodes; issue it with `tsubame ca issue --role gateway` (docs/security.md)",
			"cert", certName)
	}
	name = c.Name
	if name == "" {
		name = certName
	}
	if name != certName {
		return nil, nil, "", fmt.Errorf("gateway: name %q differs from its certificate's %q: nodes know a member by its certificate", name, certName)
	}
	return clusterTLS, httpCert, name, nil
}

// transportConfig is the QUIC transport a gateway listens with: finished LPs
// come back under the same size limit the nodes enforce.
func transportConfig(c Config, clusterTLS *tls.Config, h transport.Handler, log *slog.Logger) transport.Config {
	return transport.Config{
		Listen: c.Listen, TLS: clusterTLS, Handler: h, Logger: log,
		MaxFrame: c.Limits.MaxLPBytes + transport.FrameSlack,
		Limits:   c.lpLimits(),
	}
}

// writeTimeout is http.write_timeout, or the dispatch budget plus 10s.
func (c Config) writeTimeout() time.Duration {
	if c.HTTP.WriteTimeout > 0 {
		return c.HTTP.WriteTimeout
	}
	return time.Duration(c.Dispatch.Attempts)*c.Dispatch.AttemptTimeout + 10*time.Second
}

// settingsOf takes the running knobs out of a validated Config.
func settingsOf(c Config) settings {
	return settings{
		attempts:       c.Dispatch.Attempts,
		attemptTimeout: c.Dispatch.AttemptTimeout,
		maxInFlight:    c.Dispatch.MaxInFlight,
		maxBody:        c.HTTP.MaxBodyBytes,
		readTimeout:    c.HTTP.ReadTimeout,
		writeTimeout:   c.writeTimeout(),
		exposeTrace:    c.HTTP.ExposeTrace,
		limits:         c.lpLimits(),
	}
}

// HTTPAddr is the address clients connect to (TCP, and UDP for HTTP/3).
func (g *Gateway) HTTPAddr() string { return g.srv.addr() }

// HTTP3 reports whether HTTP/3 is served; HTTPS whether TCP speaks TLS.
func (g *Gateway) HTTP3() bool { return g.srv.udp != nil }
func (g *Gateway) HTTPS() bool { return g.srv.tls }

// QUICAddr is the transport address; GossipAddr the membership address.
func (g *Gateway) QUICAddr() string   { return g.tr.Addr() }
func (g *Gateway) GossipAddr() string { return g.cl.Addr() }

// Errors delivers a listener's failure while serving.
func (g *Gateway) Errors() <-chan error { return g.srv.errs }

// Shutdown stops accepting requests, waits (until ctx ends) for those in
// flight to be answered, leaves the cluster and closes the transport.
func (g *Gateway) Shutdown(ctx context.Context) error {
	if g.stopSweep != nil {
		g.stopSweep()
	}
	errs := []error{g.adm.close(ctx), g.srv.shutdown(ctx)}
	if g.local == nil { // an embedded gateway's node owns both
		errs = append(errs, g.cl.Leave(ctx), g.tr.Close())
	}
	errs = append(errs, g.obs.tracer().Shutdown(ctx))
	return errors.Join(errs...)
}

// acceptLP takes an LP from the transport: a finished one coming home.
func (g *Gateway) acceptLP(from string, p *lp.Process) error {
	if err := g.accept(from, p); err != nil {
		return &transport.Refusal{Reason: transport.UnknownComponent, Detail: err.Error()}
	}
	return nil
}

// Holders names the live nodes with fresh reports that hold component, as
// the dispatcher sees them.
func (g *Gateway) Holders(component string) []string {
	var names []string
	for _, p := range g.dir.Holders(component) {
		names = append(names, p.Name)
	}
	return names
}

// Nodes is how many live nodes (not gateways) with fresh load reports the
// gateway sees.
func (g *Gateway) Nodes() int {
	n := 0
	if g.local != nil {
		n++ // the node it is embedded in
	}
	for _, p := range g.dir.Peers() {
		if !p.Meta.Gateway {
			n++
		}
	}
	return n
}
