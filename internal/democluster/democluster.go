// Package democluster starts a whole Tsubame cluster inside one process:
// an in-memory CA, N nodes holding an app's components (by default the demo
// app, hello and greet) and a gateway, all on loopback. It backs `tsubame
// demo`, `tsubame bench`, the evaluation harness (internal/evalharness) and
// tests that want a real cluster without files.
//
// It never writes files and never listens beyond 127.0.0.1.
package democluster

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/tsubame-rt/tsubame/internal/obs"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/tsubame-rt/tsubame"
	"github.com/tsubame-rt/tsubame/gateway"
	"github.com/tsubame-rt/tsubame/internal/mesh/pki"
	"github.com/tsubame-rt/tsubame/internal/nodegateway"
	"github.com/tsubame-rt/tsubame/node"
	"github.com/tsubame-rt/tsubame/node/kv"
)

// Config says what to start.
type Config struct {
	// Nodes is how many nodes to start (default 3).
	Nodes int
	// HTTP is the gateway's TCP (and HTTP/3 UDP) address (default
	// 127.0.0.1:8080; "127.0.0.1:0" picks a free port).
	HTTP string
	// Workers per node; 0 is the node default (GOMAXPROCS).
	Workers int
	// Logger receives every member's logs (default: discarded).
	Logger *slog.Logger
	// App replaces the demo app; nil serves hello and greet.
	App *App
	// AttemptTimeout is the gateway's dispatch.attempt_timeout, how long it
	// waits before resending a request (0: the gateway's default).
	AttemptTimeout time.Duration
	// GatewayOnly starts the CA and a standalone gateway and no node: the
	// caller starts nodes elsewhere (in processes of their own) that join
	// through the gateway's gossip address. Nodes and Embed are ignored.
	GatewayOnly bool
	// Policy is the gateway's dispatch policy ("": the gateway's default).
	Policy string
	// Hold is every node's node.Options.Hold: a modelled capacity (nil:
	// none).
	Hold func(component string, took time.Duration) time.Duration
	// Embed runs the gateway inside node-1 (one process serving HTTP and
	// running LPs: internal/nodegateway), so a request whose first step
	// belongs there crosses no QUIC hop. Otherwise the gateway is a member
	// of its own and every request crosses to a node and back.
	Embed bool
	// OnCA, if set, gets the demo CA's certificate (PEM) before any member
	// listens, so a file it writes exists by the time HTTP is answered.
	OnCA func(pem []byte) error
	// Tracing is every member's [tracing] (default off).
	Tracing obs.TraceConfig
	// NoObservability turns every member's metrics, spans and journey ring
	// off: the baseline their cost is measured against.
	NoObservability bool
}

// App is what a cluster serves: modules, which node holds which, routes.
type App struct {
	// Modules maps a component name to its module.
	Modules map[string][]byte
	// Placement returns the components node i (0-based) of n holds.
	Placement func(i, n int) []string
	Routes    []gateway.Route
	// KV declares the buckets and grants of every node. The nodes share one
	// store, so the memory backend is cluster-wide in the demo.
	KV kv.Config
	// Gateway, if set, adjusts the gateway's configuration (a larger body
	// limit, say); Node, every node's (a longer step deadline).
	Gateway func(*gateway.Config)
	Node    func(*node.Config)
}

// Route is the demo's one route: GET /hello?name=NAME runs hello's kind
// "say", which calls greet and answers "Hello, NAME!".
var Route = gateway.Route{
	Method: "GET", Path: "/hello", Component: "hello", Kind: "say", Input: "query:name",
}

// Cluster is a running demo cluster.
type Cluster struct {
	ca      *pki.CA
	Nodes   []*node.Node
	Gateway *gateway.Gateway
	// KV is the store every node of the cluster uses.
	KV *kv.Store

	cfg Config // with App set
	log *slog.Logger
	// metrics is the registry every member of the demo shares, each with
	// a member label: the gateway's /metrics serves the whole cluster.
	metrics *prometheus.Registry
	started int // nodes ever started: the next one is node-(started+1)
}

// Placement returns the components node i (0-based) of n holds: hello and
// greet alternate so that every request migrates between nodes (with one
// node, it holds both).
func Placement(i, n int) []string {
	if n == 1 {
		return []string{"hello", "greet"}
	}
	if i%2 == 0 {
		return []string{"hello"}
	}
	return []string{"greet"}
}

// PlaceAll puts every component on every node, as nginx's replicas are: a
// request can run start to finish on whichever node it lands on.
func PlaceAll(int, int) []string { return []string{"hello", "greet"} }

// Placements are the demo app's placements by the name `--placement` takes:
// "spread" (Placement, the default: every request migrates) and "all"
// (PlaceAll).
var Placements = map[string]func(i, n int) []string{"spread": Placement, "all": PlaceAll}

// PlacedApp is the demo app under the named placement (see Placements).
func PlacedApp(name string) (*App, error) {
	pl, ok := Placements[name]
	if !ok {
		return nil, fmt.Errorf("placement %q: want \"spread\" or \"all\"", name)
	}
	app := demoApp
	app.Placement = pl
	return &app, nil
}

var demoApp = App{
	Modules:   map[string][]byte{"hello": tsubame.DemoHello, "greet": tsubame.DemoGreet},
	Placement: Placement,
	Routes:    []gateway.Route{Route},
}

// Start starts the cluster and returns once the gateway sees every node.
// On error everything already started is stopped.
func Start(ctx context.Context, c Config) (_ *Cluster, err error) {
	switch {
	case c.GatewayOnly:
		c.Nodes, c.Embed = 0, false
	case c.Nodes == 0:
		c.Nodes = 3
	}
	if (c.Nodes < 1 && !c.GatewayOnly) || c.Nodes > 64 {
		return nil, fmt.Errorf("democluster: %d nodes, want 1 to 64", c.Nodes)
	}
	if c.HTTP == "" {
		c.HTTP = "127.0.0.1:8080"
	}
	log := c.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if c.App == nil {
		c.App = &demoApp
	}
	// Fail before starting nodes when the address is taken: the common
	// mistake, and the one the user fixes with --http.
	if ln, err := net.Listen("tcp", c.HTTP); err != nil {
		return nil, fmt.Errorf("democluster: gateway address %s: %w", c.HTTP, err)
	} else {
		ln.Close()
	}
	d := &Cluster{Nodes: make([]*node.Node, c.Nodes), cfg: c, log: log, started: c.Nodes, metrics: obs.NewRegistry()}
	defer func() {
		if err != nil {
			d.Close()
		}
	}()
	if d.ca, err = pki.NewCA("tsubame-demo-ca"); err != nil {
		return nil, fmt.Errorf("democluster: %w", err)
	}
	if c.OnCA != nil {
		if err = c.OnCA(d.CAPEM()); err != nil {
			return nil, fmt.Errorf("democluster: %w", err)
		}
	}
	if d.KV, err = kv.New(c.App.KV, kv.Options{Logger: log}); err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	gc := gateway.DefaultConfig()
	gc.HTTP.Listen = c.HTTP
	gc.HTTP.TCP = "http" // curl http://... works with no flags; HTTP/3 on UDP
	gc.HTTP.ExposeTrace = true
	gc.HTTP.UI = true // the dashboard, /metrics and journeys on the gateway's address
	gc.Tracing = c.Tracing
	gc.Routes = c.App.Routes
	if c.App.Gateway != nil {
		c.App.Gateway(&gc)
	}
	if c.AttemptTimeout > 0 {
		gc.Dispatch.AttemptTimeout = c.AttemptTimeout
	}
	if c.Policy != "" {
		gc.Dispatch.Policy = c.Policy
	}
	gwName := "gateway"
	if c.Embed {
		gwName = nodeName(0)
	}
	certPEM, keyPEM, err := d.ca.Issue(gwName, "127.0.0.1")
	if err != nil {
		return nil, fmt.Errorf("democluster: %w", err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("democluster: %w", err)
	}
	gopt := gateway.Options{HTTPCert: &tls.Config{Certificates: []tls.Certificate{pair}}, Logger: log, Metrics: d.metrics,
		NoObservability: c.NoObservability}

	seeds, err := d.startNodes(ctx, gc, gopt)
	if err != nil {
		return nil, err
	}
	if !c.Embed {
		gc.Name = gwName
		gc.Seeds = seeds
		if gopt.ClusterTLS, err = d.ca.IssueTLSRole(gwName, pki.RoleGateway); err != nil {
			return nil, fmt.Errorf("democluster: %w", err)
		}
		if d.Gateway, err = gateway.New(ctx, gc, gopt); err != nil {
			return nil, fmt.Errorf("democluster: %w", err)
		}
	}
	if err := d.waitReady(ctx); err != nil {
		return nil, err
	}
	return d, nil
}

// startNodes starts the configured nodes (node-1 embedding the gateway
// when c.Embed) and returns their seeds. The first node is everyone's
// seed; the others start in parallel, since compiling the modules
// dominates start-up.
func (d *Cluster) startNodes(ctx context.Context, gc gateway.Config, gopt gateway.Options) ([]string, error) {
	c := d.cfg
	if c.Nodes == 0 {
		return nil, nil
	}
	nc, no, err := d.nodeConfig(0, c.App.Placement(0, c.Nodes), nil)
	if err != nil {
		return nil, err
	}
	if c.Embed {
		d.Nodes[0], d.Gateway, err = nodegateway.Start(ctx, nc, gc, no, gopt)
	} else {
		d.Nodes[0], err = node.New(ctx, nc, no)
	}
	if err != nil {
		return nil, fmt.Errorf("democluster: start %s: %w", nc.Name, err)
	}
	seeds := []string{d.Nodes[0].GossipAddr()}
	var wg sync.WaitGroup
	errs := make([]error, c.Nodes)
	for i := 1; i < c.Nodes; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d.Nodes[i], errs[i] = d.startNode(ctx, i, c.App.Placement(i, c.Nodes), seeds)
		}()
	}
	wg.Wait()
	return seeds, errors.Join(errs...)
}

func nodeName(i int) string { return fmt.Sprintf("node-%d", i+1) }

// startNode starts node-(i+1) holding comps.
func (d *Cluster) startNode(ctx context.Context, i int, comps []string, seeds []string) (*node.Node, error) {
	nc, no, err := d.nodeConfig(i, comps, seeds)
	if err != nil {
		return nil, err
	}
	nd, err := node.New(ctx, nc, no)
	if err != nil {
		return nil, fmt.Errorf("democluster: start %s: %w", nc.Name, err)
	}
	return nd, nil
}

// nodeConfig is node-(i+1)'s config, holding comps and joining through
// seeds.
func (d *Cluster) nodeConfig(i int, comps []string, seeds []string) (node.Config, node.Options, error) {
	name := nodeName(i)
	tlsConf, err := d.ca.IssueTLS(name)
	if err != nil {
		return node.Config{}, node.Options{}, fmt.Errorf("democluster: %w", err)
	}
	nc := node.DefaultConfig()
	nc.Name = name
	nc.Listen, nc.Gossip, nc.Admin = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	nc.Seeds = seeds
	nc.Workers = d.cfg.Workers
	if d.cfg.App.Node != nil {
		d.cfg.App.Node(&nc)
	}
	mods := map[string][]byte{}
	for _, comp := range comps {
		mods[comp] = d.cfg.App.Modules[comp]
	}
	nc.Tracing = d.cfg.Tracing
	return nc, node.Options{TLS: tlsConf, Modules: mods, Logger: d.log, Hold: d.cfg.Hold, KV: d.KV, Metrics: d.metrics,
		NoObservability: d.cfg.NoObservability}, nil
}

// AddNode starts one more node, placed as node len(Nodes) of len(Nodes)+1
// and named after every node started before it, and returns once the
// gateway and every node see it (and it them). It joins through the
// gateway and the nodes in Nodes; a caller that stops a node (Node.Close)
// removes it from Nodes first. Not safe for use concurrent with other
// methods.
func (d *Cluster) AddNode(ctx context.Context) (*node.Node, error) {
	seeds := []string{d.Gateway.GossipAddr()}
	for _, n := range d.Nodes {
		seeds = append(seeds, n.GossipAddr())
	}
	d.started++
	n, err := d.startNode(ctx, d.started-1, d.cfg.App.Placement(len(d.Nodes), len(d.Nodes)+1), seeds)
	if err != nil {
		return nil, err
	}
	d.Nodes = append(d.Nodes, n)
	if err := d.waitReady(ctx); err != nil {
		return nil, err
	}
	return n, nil
}

// readyTimeout bounds how long the gateway may take to see every node.
const readyTimeout = 30 * time.Second

// waitReady polls until the cluster has converged: the gateway sees a
// holder of each component, and every node sees every other node with a
// fresh report and its component list.
func (d *Cluster) waitReady(ctx context.Context) error {
	deadline := time.Now().Add(readyTimeout)
	for {
		missing := d.notReady()
		if missing == "" {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("democluster: not ready after %s: %s", readyTimeout, missing)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// notReady says what the cluster still lacks, or "".
func (d *Cluster) notReady() string {
	for _, n := range d.Nodes {
		if n.Name() == d.Gateway.Name() {
			continue // the gateway is embedded in it
		}
		for _, comp := range n.Components() {
			if !slices.Contains(d.Gateway.Holders(comp.Name), n.Name()) {
				return "the gateway does not see " + n.Name() + " hold " + comp.Name
			}
		}
	}
	for _, n := range d.Nodes {
		seen := map[string]bool{}
		for _, m := range n.Status().Members {
			if !m.Self && !m.Gateway && m.Fresh && len(m.Components) > 0 {
				seen[m.Name] = true
			}
		}
		for _, o := range d.Nodes {
			if o != n && !seen[o.Name()] {
				return n.Name() + " does not see " + o.Name()
			}
		}
	}
	return ""
}

// URL is the gateway's base URL over plain HTTP/1.1; HTTP/3 is at the same
// host and port with https.
func (d *Cluster) URL() string { return "http://" + d.Gateway.HTTPAddr() }

// CAPEM is the in-memory CA's certificate: what an HTTP/3 client trusts.
func (d *Cluster) CAPEM() []byte { return d.ca.CertPEM() }

// Issue makes a certificate and key (PEM) under the cluster's CA for a
// member named name on 127.0.0.1: for a node run in another process.
func (d *Cluster) Issue(name string) (certPEM, keyPEM []byte, err error) {
	return d.ca.Issue(name, "127.0.0.1")
}

// Shutdown stops the gateway first (no new requests), then the nodes one
// by one, the last started first: each leaves while others are still there
// to hear it (memberlist waits for its leave to be heard).
func (d *Cluster) Shutdown(ctx context.Context) error {
	var errs []error
	if d.Gateway != nil {
		errs = append(errs, d.Gateway.Shutdown(ctx))
	}
	for i := len(d.Nodes) - 1; i >= 0; i-- {
		if d.Nodes[i] != nil {
			errs = append(errs, d.Nodes[i].Shutdown(ctx))
		}
	}
	if d.KV != nil {
		errs = append(errs, d.KV.Close())
	}
	return errors.Join(errs...)
}

// Close stops everything at once (for error paths).
func (d *Cluster) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = d.Shutdown(ctx)
}

// PlainHello is the baseline the demo app is measured against: its string
// work ("Hello, " + name + "!") in a plain net/http handler.
func PlainHello(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	io.WriteString(w, "Hello, "+r.URL.Query().Get("name")+"!")
}
