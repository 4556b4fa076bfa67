package node

import (
	"context"

	"crypto/tls"
	"errors"
	"fmt"
	"github.com/prometheus/client_golang/prometheus"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tsubame-rt/tsubame/node/blob"

	"github.com/tsubame-rt/tsubame/internal/adminapi"
	"github.com/tsubame-rt/tsubame/internal/mesh/cluster"
	"github.com/tsubame-rt/tsubame/internal/mesh/pki"
	"github.com/tsubame-rt/tsubame/internal/mesh/transport"
	"github.com/tsubame-rt/tsubame/internal/tomlconf"
	"github.com/tsubame-rt/tsubame/lp"
	"github.com/tsubame-rt/tsubame/node/admin"
	"github.com/tsubame-rt/tsubame/node/autogrow"
	"github.com/tsubame-rt/tsubame/node/engine"
	"github.com/tsubame-rt/tsubame/node/install"
	"github.com/tsubame-rt/tsubame/node/kv"
	"github.com/tsubame-rt/tsubame/wasmhost"
)

// Options are what a node started inside another program (the demo, tests)
// passes instead of files.
type Options struct {
	// TLS replaces the [tls] files: the node's mutual-TLS configuration under
	// the cluster CA (pki.CA.IssueTLS).
	TLS *tls.Config
	// Modules adds components from memory (name -> module bytes), replacing
	// a [components] entry of the same name.
	Modules map[string][]byte
	// Logger receives the node's logs. Default slog.Default().
	Logger *slog.Logger
	// Deliver receives finished LPs whose origin is this node (nil: they
	// are dropped with a log line), whether they finish here or come back
	// from a peer: an embedded gateway's replies, or those of a tool that
	// submits work through the node.
	Deliver func(*lp.Process)
	// Hold, if set, is asked after each step that ran how much longer the
	// step's worker stays busy; the worker waits that out without using a
	// core (a stopping node cuts the wait short). It models a node's
	// capacity on a machine whose cores every node shares (the evaluation
	// harness, internal/evalharness). nil: steps take what they take.
	Hold func(component string, took time.Duration) time.Duration

	// KV replaces the store the [kv] section would open: every node of a
	// process may share one (`tsubame demo` does, so the memory backend is
	// cluster-wide there). The node does not close it.
	KV *kv.Store

	// Metrics, if set, is a registry shared by the members of this process
	// (the demo): the node registers there with a member label. Default: a
	// registry of its own, served on the admin port's /metrics.
	Metrics *prometheus.Registry
	// SpanExporter, if set, receives the node's step spans instead of the
	// OTLP exporter [tracing] configures (tests, benchmarks).
	SpanExporter sdktrace.SpanExporter
	// NoObservability turns metrics, spans and the journey ring off: the
	// baseline the cost of observing is measured against.
	NoObservability bool

	// wrap, if set, wraps the engine as the runner sees it (benchmarks
	// shape step times with it).
	wrap func(stepper) stepper
}

// Node is a running Tsubame server.
type Node struct {
	cfg  Config
	log  *slog.Logger
	rt   *wasmhost.Runtime
	eng  *engine.Engine
	tr   *transport.Transport
	cl   *cluster.Cluster
	run  *runner
	hot  *install.Manager // hot install: module store, manifest, versions, fetches
	grow *autogrow.Grower
	adm  *admin.Server
	// serving holds run and hot once New has built them: the transport and
	// the cluster call back into the node before that, from their own
	// goroutines.
	serving atomic.Pointer[parts]
	quic    string // advertised QUIC address
	// blobs keeps this node's share of its LPs' large values (node/blob).
	blobs  *blob.Store
	lpSent atomic.Int64 // bytes of LPs sent to other members (SentLPBytes)
	kv     *kv.Store
	ownKV  bool // kv was opened from the config, so Close closes it
	obs    *nodeObs

	comps atomic.Pointer[[]cluster.Component]

	stop     chan struct{}
	loops    sync.WaitGroup
	stopOnce sync.Once
	shutMu   sync.Mutex
	shutErr  error
	shutDone bool
}

// parts are what the transport's and the cluster's callbacks reach.
type parts struct {
	run *runner
	hot *install.Manager
}

// New starts a node: it loads its components, listens for LPs over QUIC,
// joins the cluster and serves the admin API. On error everything started so
// far is stopped again.
func New(ctx context.Context, c Config, o Options) (_ *Node, err error) {
	log := o.Logger
	if log == nil {
		log = slog.Default()
	}
	tlsConf, c, err := identity(c, o.TLS, log)
	if err != nil {
		return nil, err
	}
	log = log.With("node", c.Name)
	n := &Node{cfg: c, log: log, stop: make(chan struct{})}
	defer func() {
		if err != nil {
			n.Close()
		}
	}()
	configured, err := n.startRuntime(ctx, o)
	if err != nil {
		return nil, err
	}
	var token *adminapi.Token
	if c.AdminTokenFile != "" {
		if token, err = adminapi.Read(c.AdminTokenFile); err != nil {
			return nil, fmt.Errorf("node: admin_token_file: %w", err)
		}
	}
	if err := n.join(ctx, tlsConf); err != nil {
		return nil, err
	}
	if err := n.startParts(ctx, configured, o); err != nil {
		return nil, err
	}
	if c.Admin != "off" {
		n.adm, err = admin.Start(admin.Config{
			Addr: c.Admin, TLS: adminapi.ServerTLS(tlsConf), Token: token, Plain: c.AdminPlain, Logger: log, KV: n.kv,
			Observe: n.obs.routes,
		}, adminNode{n}, n.hot)
		if err != nil {
			return nil, fmt.Errorf("node: admin API on %s: %w", c.Admin, err)
		}
	}
	log.Info("node started", "quic", n.quic, "gossip", n.cl.Addr(), "admin", n.AdminAddr(),
		"workers", c.Workers, "policy", c.Scheduler.Policy, "components", len(*n.comps.Load()))
	return n, nil
}

// identity loads the node's TLS configuration (tlsConf, or [tls]) and
// returns it with c completed and checked: a node's name is its
// certificate's.
func identity(c Config, tlsConf *tls.Config, log *slog.Logger) (*tls.Config, Config, error) {
	if tlsConf == nil {
		if c.TLS.CA == "" {
			return nil, c, errors.New("node: no TLS configuration: set [tls] ca, cert and key (see `tsubame ca`)")
		}
		var err error
		if tlsConf, err = pki.LoadTLSConfig(c.TLS.CA, c.TLS.Cert, c.TLS.Key); err != nil {
			return nil, c, fmt.Errorf("node: %w", err)
		}
	}
	certName, err := pki.LocalName(tlsConf)
	if err != nil {
		return nil, c, fmt.Errorf("node: %w", err)
	}
	if err := checkRole(tlsConf, pki.RoleNode, log); err != nil {
		return nil, c, fmt.Errorf("node: %w", err)
	}
	if c.Name == "" {
		c.Name = certName
	}
	c = c.withDefaults()
	if err := c.Validate(); err != nil {
		return nil, c, fmt.Errorf("node: invalid config: %w", err)
	}
	if c.Name != certName {
		return nil, c, fmt.Errorf("node: name %q differs from its certificate's %q: peers know a node by its certificate", c.Name, certName)
	}
	return tlsConf, c, nil
}

// startRuntime opens the KV store and the blob store, starts the wasm
// runtime and the engine, and loads the configured components, whose bytes
// it returns by name.
func (n *Node) startRuntime(ctx context.Context, o Options) (map[string][]byte, error) {
	c, log := n.cfg, n.log
	var err error
	if n.kv = o.KV; n.kv == nil {
		if n.kv, err = kv.New(c.KV, kv.Options{Logger: log}); err != nil {
			return nil, fmt.Errorf("node: %w", err)
		}
		n.ownKV = true
	}
	n.blobs = blob.New(c.Name, c.Blobs.Fit(c.Limits.MaxLPBytes+transport.FrameSlack), nodeNet{n}, n.addrOf, log)
	wc := wasmhost.NewConfig().
		WithBlobs(n.blobs).
		WithKV(n.kv).
		WithMemoryLimitPages(c.Limits.MemoryPages).
		WithStepTimeout(c.Limits.StepTimeout).
		WithMaxInstances(c.Workers).
		WithLimits(c.LpLimits()).
		WithFreshInstances(c.Limits.FreshInstances...).
		WithLogger(log)
	if c.DataDir != "" {
		wc = wc.WithCacheDir(filepath.Join(c.DataDir, "compiled"))
	}
	if n.rt, err = wasmhost.New(ctx, wc); err != nil {
		return nil, fmt.Errorf("node: start wasm runtime: %w", err)
	}
	n.eng = engine.New(n.rt, engine.Options{Node: c.Name, Limits: c.LpLimits(), Logger: log})
	if err := n.startObs(ctx, o); err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	return n.loadComponents(ctx, o.Modules)
}

// join listens for LPs over QUIC and joins the cluster. Their callbacks
// reach the node before startParts has built what they call; until then
// they refuse.
func (n *Node) join(ctx context.Context, tlsConf *tls.Config) (err error) {
	c := n.cfg
	n.tr, err = transport.Listen(ctx, transport.Config{
		Listen:   c.Listen,
		TLS:      tlsConf,
		Handler:  transport.HandlerFunc(n.acceptLP),
		Requests: transport.RequestHandlerFunc(n.handleRequest),
		Logger:   n.log,
		MaxFrame: c.Limits.MaxLPBytes + transport.FrameSlack,
		Limits:   c.LpLimits(),
	})
	if err != nil {
		return fmt.Errorf("node: listen for LPs on %s: %w", c.Listen, err)
	}
	if n.quic, err = advertised(n.tr.Addr()); err != nil {
		return fmt.Errorf("node: %w", err)
	}
	key, _ := tomlconf.SecretKey(c.Membership.Key) // validated by identity
	n.cl, err = cluster.Join(ctx, cluster.Config{
		Name: c.Name, Bind: c.Gossip, Seeds: c.Seeds,
		ReportInterval: c.Membership.ReportInterval, StaleAfter: c.Scheduler.StaleAfter,
		ProbeInterval: c.Membership.ProbeInterval, ProbeTimeout: c.Membership.ProbeTimeout,
		GossipInterval: c.Membership.GossipInterval, SuspicionMult: c.Membership.SuspicionMult,
		SecretKey: key, Logger: n.log, OnMember: n.obs.membership,
	}, n.localMeta)
	if err != nil {
		return fmt.Errorf("node: %w", err)
	}
	return nil
}

// startParts builds hot install, the runner and auto-grow, each whole, hands
// them to the transport's and the cluster's callbacks, and starts the
// node's loops.
func (n *Node) startParts(ctx context.Context, configured map[string][]byte, o Options) (err error) {
	c := n.cfg
	q := newRunQueue(c.Queue)
	storeDir := ""
	if c.DataDir != "" {
		storeDir = filepath.Join(c.DataDir, "modules")
	}
	n.hot, err = install.New(ctx, install.Config{
		Name: c.Name, Workers: c.Workers, Dir: storeDir,
		MaxBytes: c.Modules.MaxBytes, KeepOld: c.Modules.KeepOld, Configured: configured,
	}, install.Deps{
		Runtime: n.rt, Engine: n.eng, Cluster: n.cl, Net: n.tr, Queue: q, Logger: n.log,
		Changed:   func() { n.refreshComponents(); n.cl.Announce() },
		Installed: n.obs.installed,
	})
	if err != nil {
		return fmt.Errorf("node: %w", err)
	}
	n.refreshComponents()
	var step stepper = n.hot.Stepper()
	if o.Hold != nil {
		step = holdStep{step, o.Hold}
	}
	if o.wrap != nil {
		step = o.wrap(step)
	}
	if n.run, err = newRunner(c.Name, c.Scheduler, c.Workers, q, c.LpLimits(), step, blobSender{n}, n.cl, n.log); err != nil {
		return fmt.Errorf("node: %w", err)
	}
	if deliver := o.Deliver; deliver != nil {
		n.run.deliver = func(p *lp.Process) { n.resolveRoot(p); deliver(p) }
	}
	n.grow = autogrow.New(c.Autogrow, growHost{name: c.Name, hot: n.hot, run: n.run, cl: n.cl, eng: n.eng, obs: n.obs}, n.log)
	n.run.obs = n.obs
	n.serving.Store(&parts{run: n.run, hot: n.hot})
	n.run.start()
	n.cl.Announce() // advertise the components now, not at the next report
	n.loops.Add(2)
	go n.tick()
	go n.housekeep()
	return nil
}

// Blobs returns the node's blob store (its counters, for tests and
// benchmarks).
func (n *Node) Blobs() *blob.Store { return n.blobs }

// advertised turns the transport's bound address into one peers can dial.
func advertised(addr string) (string, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("transport address %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		return "", fmt.Errorf("listen address %s is not one peers can dial: listen on a specific address", addr)
	}
	return addr, nil
}

// loadComponents compiles the configured modules (files, and mem by name)
// and installs them; it returns their bytes by component name.
func (n *Node) loadComponents(ctx context.Context, mem map[string][]byte) (map[string][]byte, error) {
	wasm := map[string][]byte{}
	src := map[string]string{}
	for name, path := range n.cfg.Components {
		if _, ok := mem[name]; ok {
			continue
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("node: component %s: %w", name, err)
		}
		wasm[name], src[name] = b, path
	}
	for name, b := range mem {
		wasm[name], src[name] = b, "(in memory)"
	}
	names := make([]string, 0, len(wasm))
	for name := range wasm {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		m, err := n.rt.Load(ctx, wasm[name])
		if err != nil {
			return nil, fmt.Errorf("node: component %s from %s: %w", name, src[name], err)
		}
		n.eng.Install(name, m)
		n.obs.installed("config")
		n.log.Info("component loaded", "component", name, "hash", m.Hash().Short(), "bytes", m.Size(), "from", src[name])
	}
	return wasm, nil
}

// refreshComponents republishes the component list the cluster advertises.
func (n *Node) refreshComponents() {
	var cs []cluster.Component
	for _, c := range n.eng.Components() {
		cs = append(cs, cluster.Component{Name: c.Name, Hash: c.Hash})
	}
	n.comps.Store(&cs)
}

// localMeta is what the cluster advertises for this node, sampled for every
// load report. A draining node advertises no components, so peers stop
// choosing it within one report interval.
func (n *Node) localMeta() cluster.Meta {
	m := cluster.Meta{QUIC: n.quic, Workers: n.cfg.Workers}
	p := n.serving.Load()
	if p == nil {
		return m // starting: nothing to advertise yet
	}
	r := p.run
	if !r.draining.Load() {
		if cs := n.comps.Load(); cs != nil {
			m.Components = *cs
		}
	}
	m.Load = r.load()
	m.Queue = r.q.len()
	m.In, m.Out = r.rates.get()
	return m
}

// tick samples rates and pushes out queued work when overloaded, once per
// report interval.
func (n *Node) tick() {
	defer n.loops.Done()
	t := time.NewTicker(n.cfg.Membership.ReportInterval)
	defer t.Stop()
	for {
		select {
		case <-n.stop:
			return
		case now := <-t.C:
			n.run.rates.sample(now, n.run.in.Load(), n.run.out.Load())
			n.blobs.Sweep()
			if !n.run.draining.Load() {
				n.run.pushOut()
			}
		}
	}
}

// Name returns the node's name.
func (n *Node) Name() string { return n.cfg.Name }

// QUICAddr returns the address LPs reach this node on.
func (n *Node) QUICAddr() string { return n.quic }

// GossipAddr returns the membership address, for other members' seeds.
func (n *Node) GossipAddr() string { return n.cl.Addr() }

// AdminAddr returns the admin API's address, or "" when it is off.
func (n *Node) AdminAddr() string {
	if n.adm == nil {
		return ""
	}
	return n.adm.Addr()
}

// Config returns the configuration the node runs with, defaults filled in.
func (n *Node) Config() Config { return n.cfg }

// Components returns the components this node holds, sorted by name.
func (n *Node) Components() []cluster.Component {
	if cs := n.comps.Load(); cs != nil {
		return slices.Clone(*cs)
	}
	return nil
}

// Shutdown stops the node gracefully: it refuses new LPs (peers re-pick),
// stops advertising its components, hands queued LPs to other holders (or
// finishes them here when nobody else holds their component), waits for
// running steps, then leaves the cluster. ctx bounds the wait; LPs still
// here when it ends are lost, and their origins resend them.
func (n *Node) Shutdown(ctx context.Context) error {
	n.shutMu.Lock()
	defer n.shutMu.Unlock()
	if n.shutDone {
		return n.shutErr
	}
	n.shutDone = true
	n.log.Info("shutting down")
	var errs []error
	if err := n.run.drain(ctx); err != nil {
		errs = append(errs, err)
	}
	// Leave after draining: a running LP's next hop needs the live view.
	if err := n.cl.Leave(ctx); err != nil {
		errs = append(errs, err)
	}
	n.closeRest(ctx)
	n.shutErr = errors.Join(errs...)
	return n.shutErr
}

// Close stops the node at once, as a crash would, except that it releases
// its ports: LPs it holds are lost. For tests of failure handling.
func (n *Node) Close() {
	if n.cl != nil {
		_ = n.cl.Close()
	}
	if n.run != nil {
		n.run.draining.Store(true)
		n.run.cancel()
		n.run.q.close()
		n.run.q.takeNewest(n.run.q.len(), func(*lp.Process) bool { return true })
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	n.closeRest(ctx)
	if n.run != nil {
		n.run.wg.Wait()
	}
}

func (n *Node) closeRest(ctx context.Context) {
	n.stopOnce.Do(func() {
		close(n.stop)
		n.loops.Wait()
		if n.adm != nil {
			_ = n.adm.Shutdown(ctx)
		}
		if n.hot != nil {
			n.hot.Close() // ends the auto-installs in flight too
		}
		if n.grow != nil {
			n.grow.Wait()
		}
		if n.tr != nil {
			_ = n.tr.Close()
		}
		if n.rt != nil {
			_ = n.rt.Close(ctx)
		}
		if n.ownKV {
			_ = n.kv.Close()
		}
		if n.obs != nil {
			_ = n.obs.tr.Shutdown(ctx) // flush the spans not yet exported
		}
	})
}

// RunHere runs p, a fresh LP whose origin is this node, on the calling
// goroutine if its first step belongs here (this node holds the component and
// is not markedly more loaded than the other holders), and reports whether it
// did: from then on the node owns p, which comes back through
// Options.Deliver when it finishes. False leaves p with the caller (send it
// to another holder). It is how a gateway embedded in the node serves a
// request without a QUIC hop.
func (n *Node) RunHere(p *lp.Process) bool {
	ps := n.serving.Load()
	return ps != nil && ps.run.runHere(p)
}

// Transport is the node's QUIC transport and Cluster its membership: an
// embedded gateway sends and listens through them rather than its own.
func (n *Node) Transport() *transport.Transport { return n.tr }
func (n *Node) Cluster() *cluster.Cluster       { return n.cl }

// acceptLP is the transport's handler: the runner's accept once New has
// wired it.
func (n *Node) acceptLP(ctx context.Context, from string, p *lp.Process) error {
	ps := n.serving.Load()
	if ps == nil {
		return &transport.Refusal{Reason: transport.ShuttingDown, Detail: n.cfg.Name + " is starting"}
	}
	return ps.run.accept(from, p)
}

// handleRequest answers peers' requests (modules, install orders) once New
// has built hot install.
func (n *Node) handleRequest(ctx context.Context, from string, kind transport.RequestKind, body []byte) ([]byte, error) {
	if blob.Handles(kind) {
		return n.blobs.HandleRequest(ctx, from, kind, body)
	}
	ps := n.serving.Load()
	if ps == nil {
		return nil, &transport.RequestError{Status: transport.StatusUnsupported, Msg: n.cfg.Name + " is starting"}
	}
	return ps.hot.HandleRequest(ctx, from, kind, body)
}
