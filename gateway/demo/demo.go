// Package demo starts a whole Tsubame cluster inside one process: an
// in-memory CA, N nodes holding the demo components (hello and greet) and a
// gateway, all on loopback. It backs `tsubame demo`, `tsubame bench gateway`
// and tests that want a real cluster without files.
//
// It never writes files and never listens beyond 127.0.0.1.
package demo

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/tsubame-rt/tsubame"
	"github.com/tsubame-rt/tsubame/gateway"
	"github.com/tsubame-rt/tsubame/node"
	"github.com/tsubame-rt/tsubame/node/pki"
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

var modules = map[string][]byte{"hello": tsubame.DemoHello, "greet": tsubame.DemoGreet}

// Start starts the cluster and returns once the gateway sees every node.
// On error everything already started is stopped.
func Start(ctx context.Context, c Config) (_ *Cluster, err error) {
	if c.Nodes == 0 {
		c.Nodes = 3
	}
	if c.Nodes < 1 || c.Nodes > 64 {
		return nil, fmt.Errorf("demo: %d nodes, want 1 to 64", c.Nodes)
	}
	if c.HTTP == "" {
		c.HTTP = "127.0.0.1:8080"
	}
	log := c.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	// Fail before starting nodes when the address is taken: the common
	// mistake, and the one the user fixes with --http.
	if ln, err := net.Listen("tcp", c.HTTP); err != nil {
		return nil, fmt.Errorf("demo: gateway address %s: %w", c.HTTP, err)
	} else {
		ln.Close()
	}
	d := &Cluster{Nodes: make([]*node.Node, c.Nodes)}
	defer func() {
		if err != nil {
			d.Close()
		}
	}()
	if d.ca, err = pki.NewCA("tsubame-demo-ca"); err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	// The first node is everyone's seed; the others start in parallel, since
	// compiling the modules dominates start-up.
	if d.Nodes[0], err = d.startNode(ctx, 0, c, nil, log); err != nil {
		return nil, err
	}
	seeds := []string{d.Nodes[0].GossipAddr()}
	var wg sync.WaitGroup
	errs := make([]error, c.Nodes)
	for i := 1; i < c.Nodes; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d.Nodes[i], errs[i] = d.startNode(ctx, i, c, seeds, log)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}

	gc := gateway.DefaultConfig()
	gc.Name = "gateway"
	gc.Seeds = seeds
	gc.HTTP.Listen = c.HTTP
	gc.HTTP.TCP = "http" // curl http://... works with no flags; HTTP/3 on UDP
	gc.HTTP.ExposeTrace = true
	gc.Routes = []gateway.Route{Route}
	clusterTLS, err := d.ca.IssueTLS("gateway")
	if err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	certPEM, keyPEM, err := d.ca.Issue("gateway", "127.0.0.1")
	if err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	d.Gateway, err = gateway.New(ctx, gc, gateway.Options{
		ClusterTLS: clusterTLS,
		HTTPCert:   &tls.Config{Certificates: []tls.Certificate{pair}},
		Logger:     log,
	})
	if err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	if err := d.waitReady(ctx); err != nil {
		return nil, err
	}
	return d, nil
}

func (d *Cluster) startNode(ctx context.Context, i int, c Config, seeds []string, log *slog.Logger) (*node.Node, error) {
	name := fmt.Sprintf("node-%d", i+1)
	tlsConf, err := d.ca.IssueTLS(name)
	if err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	nc := node.DefaultConfig()
	nc.Name = name
	nc.Listen, nc.Gossip, nc.Admin = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	nc.Seeds = seeds
	nc.Workers = c.Workers
	mods := map[string][]byte{}
	for _, comp := range Placement(i, c.Nodes) {
		mods[comp] = modules[comp]
	}
	n, err := node.New(ctx, nc, node.Options{TLS: tlsConf, Modules: mods, Logger: log})
	if err != nil {
		return nil, fmt.Errorf("demo: start %s: %w", name, err)
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
			return fmt.Errorf("demo: not ready after %s: %s", readyTimeout, missing)
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
	for comp := range modules {
		if len(d.Gateway.Holders(comp)) == 0 {
			return "the gateway sees no holder of " + comp
		}
	}
	for _, n := range d.Nodes {
		seen := 0
		for _, m := range n.Status().Members {
			if !m.Self && !m.Gateway && m.Fresh && len(m.Components) > 0 {
				seen++
			}
		}
		if seen != len(d.Nodes)-1 {
			return fmt.Sprintf("%s sees %d of the %d other nodes", n.Name(), seen, len(d.Nodes)-1)
		}
	}
	return ""
}

// URL is the gateway's base URL over plain HTTP/1.1; HTTP/3 is at the same
// host and port with https.
func (d *Cluster) URL() string { return "http://" + d.Gateway.HTTPAddr() }

// CAPEM is the in-memory CA's certificate: what an HTTP/3 client trusts.
func (d *Cluster) CAPEM() []byte { return d.ca.CertPEM() }

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
	return errors.Join(errs...)
}

// Close stops everything at once (for error paths).
func (d *Cluster) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = d.Shutdown(ctx)
}
