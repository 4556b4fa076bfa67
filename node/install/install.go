package install

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/tsubame-rt/tsubame/abi"
	"github.com/tsubame-rt/tsubame/internal/adminapi"
	"github.com/tsubame-rt/tsubame/internal/mesh/cluster"
	"github.com/tsubame-rt/tsubame/internal/mesh/transport"
	"github.com/tsubame-rt/tsubame/lp"
	"github.com/tsubame-rt/tsubame/node/engine"
	"github.com/tsubame-rt/tsubame/node/store"
	"github.com/tsubame-rt/tsubame/node/versions"
	"github.com/tsubame-rt/tsubame/wasmhost"
)

// Manager is a node's hot install: the module store and its manifest,
// installs and removals at run time (from the admin API, from peers' install
// orders and from auto-grow), module fetches from peers, the old versions
// kept for suspended LPs, and per-component statistics.
type Manager struct {
	name      string
	workers   int
	log       *slog.Logger
	rt        Runtime
	eng       Engine
	cl        Cluster
	net       Requester
	queue     Queue
	changed   func()
	installed func(source string)

	store     *store.Store
	maxBytes  int
	keepOld   time.Duration
	configSum map[string]lp.Hash // configured modules by name, as loaded at start
	started   time.Time

	// mu serialises installs, removals, the manifest and the version
	// collector; it is never held while a step runs.
	mu       sync.Mutex
	manifest map[string]store.Entry
	repairs  []store.Entry // restored entries whose stored module is lost; only repair touches it after restore

	vers  *versions.Keeper
	stats sync.Map // component name -> *compStats

	fetchMu  sync.Mutex
	fetching map[lp.Hash]*fetchCall

	statusMu   sync.Mutex // PeerReports' cache
	statusAt   time.Time
	statusReps []adminapi.ComponentsReport

	ctx    context.Context // ends at Close
	cancel context.CancelFunc
	wg     sync.WaitGroup // background installs and repairs
}

// Config is how a Manager keeps modules.
type Config struct {
	// Name is this node's member name; Workers its worker count (for the
	// per-component load share).
	Name    string
	Workers int
	// Dir is the module store's directory ("": in memory only).
	Dir string
	// MaxBytes bounds one module; KeepOld is how long an old version is
	// kept past its last use ([modules]).
	MaxBytes int
	KeepOld  time.Duration
	// Configured are the modules the node loaded from its config (and from
	// memory) before New, by component name: kept in the store for peers,
	// and the intent a manifest entry is checked against.
	Configured map[string][]byte
}

// Runtime is the wasm runtime: wasmhost.Runtime.
type Runtime interface {
	Load(ctx context.Context, wasm []byte) (*wasmhost.Module, error)
	Validate(ctx context.Context, wasm []byte) error
	Module(h lp.Hash) *wasmhost.Module
	Drop(ctx context.Context, h lp.Hash) error
}

// Engine runs steps of the installed components: node/engine.Engine.
type Engine interface {
	Install(name string, m *wasmhost.Module)
	Remove(name string)
	Components() []engine.Component
	Holds(component string) bool
	Step(ctx context.Context, p *lp.Process) (lp.Step, error)
}

// Cluster is the node's membership view: cluster.Cluster.
type Cluster interface {
	Members() []cluster.Peer
	Peer(name string) (cluster.Peer, bool)
}

// Requester asks a peer over the cluster's QUIC connections:
// transport.Transport.
type Requester interface {
	Request(ctx context.Context, addr string, kind transport.RequestKind, body []byte, maxResp int) ([]byte, error)
}

// Queue lets the Manager see the LPs waiting in the node's run queue.
type Queue interface {
	// Each calls f for every queued LP, under the queue's lock.
	Each(f func(*lp.Process))
}

// Deps are the parts of the node a Manager works with.
type Deps struct {
	Runtime Runtime
	Engine  Engine
	Cluster Cluster
	Net     Requester
	Queue   Queue
	Logger  *slog.Logger
	// Changed republishes the node's component list after an install or
	// removal, and tells the cluster.
	Changed func()
	// Installed, if set, hears of each install done here by its source
	// (metrics).
	Installed func(source string)
}

// Install sources, as the manifest and the components list show them.
const (
	sourceConfig = "config"
	sourceUpload = "upload"
	sourcePeer   = "peer"
	sourceAuto   = "auto"
)

// installTimeout bounds one install order to a peer: its fetch and compile.
const installTimeout = 60 * time.Second

// New opens the module store, keeps the configured modules in it and
// applies the manifest (components installed or removed at run time), so a
// restarted node holds what it held. Modules the store lost are fetched
// again from peers in the background until Close.
func New(ctx context.Context, c Config, d Deps) (*Manager, error) {
	h := &Manager{
		name: c.Name, workers: c.Workers, log: d.Logger,
		rt: d.Runtime, eng: d.Engine, cl: d.Cluster, net: d.Net, queue: d.Queue, changed: d.Changed, installed: d.Installed,
		maxBytes:  c.MaxBytes,
		keepOld:   c.KeepOld,
		configSum: map[string]lp.Hash{},
		manifest:  map[string]store.Entry{},
		fetching:  map[lp.Hash]*fetchCall{},
		started:   time.Now(),
		vers:      versions.New(c.KeepOld),
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	h.ctx, h.cancel = context.WithCancel(context.Background())
	var err error
	if h.store, err = store.Open(c.Dir); err != nil {
		return nil, err
	}
	if err := h.restore(ctx, c.Configured); err != nil {
		return nil, err
	}
	if len(h.repairs) > 0 {
		h.wg.Add(1)
		go h.repair()
	}
	return h, nil
}

// Close stops background installs and repairs and waits for them.
func (h *Manager) Close() {
	h.cancel()
	h.wg.Wait()
}

// Store is the module store (tests look into it).
func (h *Manager) Store() *store.Store { return h.store }

// MaxBytes bounds one module ([modules] max_bytes).
func (h *Manager) MaxBytes() int { return h.maxBytes }

// restore keeps the configured modules' bytes in the store (peers may fetch
// them) and applies the manifest: components installed or removed at run
// time. A manifest entry for a name the config file also lists wins only if
// the config still lists the module it listed when the entry was written;
// an edited config file is newer intent.
func (h *Manager) restore(ctx context.Context, configured map[string][]byte) error {
	for _, c := range h.eng.Components() {
		b, ok := configured[c.Name]
		if !ok {
			continue
		}
		h.configSum[c.Name] = c.Hash
		h.vers.Track(c.Hash)
		if _, err := h.store.Put(b); err != nil {
			return err
		}
	}
	m, err := h.store.Manifest()
	if err != nil {
		return err
	}
	changed := false
	for _, e := range m.Components {
		cfg, inConfig := h.configSum[e.Name]
		if inConfig && e.ConfigHash != cfg.String() {
			h.log.Info("config file changed since a run-time install or removal; the config wins", "component", e.Name)
			changed = true
			continue
		}
		if e.Removed {
			h.eng.Remove(e.Name)
			h.manifest[e.Name] = e
			continue
		}
		hash, _ := store.ParseHash(e.Hash) // checked by store.Manifest
		b, err := h.store.Get(hash)
		var mod *wasmhost.Module
		if err == nil {
			mod, err = h.rt.Load(ctx, b)
		}
		if err != nil {
			// The node still starts: one bad entry must not keep the others
			// (or the node) down. The entry stays; a module the store lost
			// or holds corrupt is fetched again from a peer once the node
			// has joined (repair.go).
			h.log.Error("cannot restore installed component", "component", e.Name, "hash", hash.Short(), "err", err)
			h.manifest[e.Name] = e
			if mod == nil && (errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrCorrupt)) {
				h.needRepair(e, hash, err)
			}
			continue
		}
		h.eng.Install(e.Name, mod)
		h.vers.Track(hash)
		h.manifest[e.Name] = e
		h.log.Info("component restored", "component", e.Name, "hash", hash.Short(), "source", e.Source, "installed_at", e.InstalledAt)
	}
	if changed {
		if err := h.saveManifest(); err != nil {
			return err
		}
	}
	h.refresh()
	return nil
}

// setManifest sets name's manifest entry (nil deletes it) and saves the
// manifest; if that fails the entry is as it was. The caller holds h.mu.
func (h *Manager) setManifest(name string, e *store.Entry) error {
	old, had := h.manifest[name]
	put := func(e *store.Entry, ok bool) {
		if ok {
			h.manifest[name] = *e
		} else {
			delete(h.manifest, name)
		}
	}
	put(e, e != nil)
	if err := h.saveManifest(); err != nil {
		put(&old, had)
		return err
	}
	return nil
}

func (h *Manager) saveManifest() error {
	m := store.Manifest{}
	for _, e := range h.manifest {
		m.Components = append(m.Components, e)
	}
	return h.store.SaveManifest(m)
}

// installSource says where an install comes from.
type installSource struct {
	source string // sourceUpload, sourcePeer or sourceAuto
	by     string // the member that ordered it ("" for an upload here)
}

// installLocal makes module hash the current version of component name on
// this node, fetching the bytes from a peer (prefer first) if the node lacks
// them. Anything that fails leaves the node as it was.
func (h *Manager) installLocal(ctx context.Context, name string, hash lp.Hash, o installSource, prefer string) (adminapi.InstallResult, error) {
	start := time.Now()
	res := adminapi.InstallResult{Node: h.name, Hash: hash.String()}
	if !abi.ValidName(name) {
		return res, fmt.Errorf("%q is not a valid component name (1-64 ASCII letters, digits, '_', '-', '.', starting with a letter)", name)
	}
	mod, from, err := h.module(ctx, hash, prefer, name)
	if err != nil {
		return res, err
	}
	res.FetchedFrom = from
	h.mu.Lock()
	defer h.mu.Unlock()
	e := store.Entry{Name: name, Hash: hash.String(), Source: o.source, Auto: o.source == sourceAuto, By: o.by, InstalledAt: time.Now().UTC()}
	if cfg, ok := h.configSum[name]; ok {
		e.ConfigHash = cfg.String()
	}
	if err := h.setManifest(name, &e); err != nil {
		return res, err
	}
	prev, held := h.current(name)
	h.eng.Install(name, mod)
	h.vers.Track(hash)
	if held && prev != hash {
		h.vers.Retire(prev, time.Now())
	}
	h.refresh()
	res.OK, res.Millis = true, time.Since(start).Milliseconds()
	if h.installed != nil {
		h.installed(o.source)
	}
	h.log.Info("component installed", "component", name, "hash", hash.Short(), "bytes", mod.Size(), "source", o.source,
		"by", o.by, "fetched_from", from, "ms", res.Millis)
	return res, nil
}

// module returns the loaded module with hash h: already loaded, from the
// store, or fetched from a peer (then checked, compiled and stored).
func (h *Manager) module(ctx context.Context, hash lp.Hash, prefer, component string) (*wasmhost.Module, string, error) {
	if m := h.rt.Module(hash); m != nil {
		return m, "", nil
	}
	b, err := h.store.Get(hash)
	from := ""
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) {
			h.log.Warn("module store", "err", err)
		}
		if b, from, err = h.fetch(ctx, hash, prefer, component); err != nil {
			return nil, "", err
		}
	}
	m, err := h.rt.Load(ctx, b)
	if err != nil {
		return nil, "", err
	}
	h.vers.Retire(hash, time.Now())
	if from != "" {
		if _, err := h.store.Put(b); err != nil {
			h.log.Warn("cannot keep a fetched module in the store", "hash", hash.Short(), "err", err)
		}
	}
	return m, from, nil
}

// current returns the module version component name runs here.
func (h *Manager) current(name string) (lp.Hash, bool) {
	for _, c := range h.eng.Components() {
		if c.Name == name {
			return c.Hash, true
		}
	}
	return lp.Hash{}, false
}

// refresh republishes the component list and tells the cluster at once.
func (h *Manager) refresh() {
	if h.changed != nil {
		h.changed()
	}
}

// removeLocal uninstalls component name here.
func (h *Manager) removeLocal(name string) (adminapi.InstallResult, error) {
	start := time.Now()
	res := adminapi.InstallResult{Node: h.name}
	h.mu.Lock()
	defer h.mu.Unlock()
	prev, held := h.current(name)
	if !held {
		return res, fmt.Errorf("%s does not hold component %q", h.name, name)
	}
	var tomb *store.Entry // a configured component's removal is remembered
	if cfg, ok := h.configSum[name]; ok {
		tomb = &store.Entry{Name: name, Removed: true, ConfigHash: cfg.String(), InstalledAt: time.Now().UTC()}
	}
	if err := h.setManifest(name, tomb); err != nil {
		return res, err
	}
	h.eng.Remove(name)
	h.vers.Retire(prev, time.Now())
	h.refresh()
	res.OK, res.Removed, res.Hash, res.Millis = true, true, prev.String(), time.Since(start).Milliseconds()
	h.log.Info("component removed", "component", name, "hash", prev.Short())
	return res, nil
}

// Targets resolves an install's or removal's node list: names (self
// included), every live node (all), or this node alone.
func (h *Manager) Targets(names []string, all bool) ([]string, error) {
	self := h.name
	if all {
		out := []string{self}
		for _, m := range h.cl.Members() {
			if !m.Meta.Gateway {
				out = append(out, m.Name)
			}
		}
		return out, nil
	}
	if len(names) == 0 {
		return []string{self}, nil
	}
	var out []string
	for _, name := range names {
		if slices.Contains(out, name) {
			continue
		}
		if name != self {
			p, ok := h.cl.Peer(name)
			if !ok {
				return nil, fmt.Errorf("no live member is named %q", name)
			}
			if p.Meta.Gateway {
				return nil, fmt.Errorf("%s is a gateway: gateways hold no components", name)
			}
		}
		out = append(out, name)
	}
	return out, nil
}

// Order is the body of a RequestInstall: a peer tells this node to install a module it can fetch by hash.
type Order struct {
	Name string `json:"name"`
	Hash string `json:"hash"`
	Auto bool   `json:"auto,omitempty"`
	By   string `json:"by,omitempty"`
}

// RemoveOrder is the body of a RequestRemove.
type RemoveOrder struct {
	Name string `json:"name"`
}

// spread installs (hash != nil) or removes component name on each target,
// this node directly and peers by order over QUIC, in parallel.
func (h *Manager) spread(ctx context.Context, targets []string, name string, hash *lp.Hash, o installSource) []adminapi.InstallResult {
	out := make([]adminapi.InstallResult, len(targets))
	var wg sync.WaitGroup
	for i, target := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var res adminapi.InstallResult
			var err error
			switch {
			case target == h.name && hash != nil:
				res, err = h.installLocal(ctx, name, *hash, o, "")
			case target == h.name:
				res, err = h.removeLocal(name)
			default:
				res, err = h.order(ctx, target, name, hash, o)
			}
			res.Node = target
			if err != nil {
				res.OK, res.Error = false, err.Error()
			}
			out[i] = res
		}()
	}
	wg.Wait()
	sort.Slice(out, func(i, j int) bool { return out[i].Node < out[j].Node })
	return out
}

// errDeclaredDead ends an order to a peer that membership declared dead.
var errDeclaredDead = errors.New("declared dead by membership while the order was in flight (it may have applied the order before it died)")

// orderPoll is how often an order in flight checks that its peer is alive.
const orderPoll = 100 * time.Millisecond

// whileAlive returns ctx, cancelled with errDeclaredDead as soon as peer is
// no longer a live member: an order to a node that died must not wait for
// QUIC's idle timeout when membership knew within a second.
func (h *Manager) whileAlive(ctx context.Context, peer string) context.Context {
	ctx, cancel := context.WithCancelCause(ctx)
	go func() {
		t := time.NewTicker(orderPoll)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if _, ok := h.cl.Peer(peer); !ok {
					cancel(fmt.Errorf("%s: %w", peer, errDeclaredDead))
					return
				}
			}
		}
	}()
	return ctx
}

// order sends an install or remove order to peer and waits for its result.
func (h *Manager) order(ctx context.Context, peer, name string, hash *lp.Hash, o installSource) (adminapi.InstallResult, error) {
	res := adminapi.InstallResult{Node: peer}
	p, ok := h.cl.Peer(peer)
	if !ok {
		return res, fmt.Errorf("no live member is named %q", peer)
	}
	kind := transport.RequestRemove
	var body []byte
	if hash != nil {
		kind = transport.RequestInstall
		body, _ = json.Marshal(Order{Name: name, Hash: hash.String(), Auto: o.source == sourceAuto, By: h.name})
	} else {
		body, _ = json.Marshal(RemoveOrder{Name: name})
	}
	ctx, cancel := context.WithTimeout(ctx, installTimeout)
	defer cancel()
	ctx = h.whileAlive(ctx, peer)
	ans, err := h.net.Request(ctx, p.Meta.QUIC, kind, body, 64<<10)
	if err != nil {
		var re *transport.RequestError
		if errors.As(err, &re) {
			return res, errors.New(re.Msg)
		}
		if cause := context.Cause(ctx); errors.Is(cause, errDeclaredDead) {
			return res, cause
		}
		return res, err
	}
	if err := json.Unmarshal(ans, &res); err != nil {
		return res, fmt.Errorf("%s answered the %s order with %q: %w", peer, kind, ans, err)
	}
	return res, nil
}

// HandleRequest answers peers' requests: module bytes by hash, install and
// remove orders, the component list. Any member of the cluster (a holder of
// a certificate from the cluster CA) may send them: membership is the trust
// boundary inside the cluster, the admin token the one outside it.
func (h *Manager) HandleRequest(ctx context.Context, from string, kind transport.RequestKind, body []byte) ([]byte, error) {
	switch kind {
	case transport.RequestModule:
		if len(body) != len(lp.Hash{}) {
			return nil, fmt.Errorf("module request of %d bytes, want a 32-byte SHA-256", len(body))
		}
		b, err := h.store.Get(lp.Hash(body))
		if errors.Is(err, store.ErrNotFound) {
			return nil, &transport.RequestError{Status: transport.StatusNotFound, Msg: h.name + " does not have module " + lp.Hash(body).Short()}
		}
		return b, err
	case transport.RequestInstall:
		var o Order
		if err := json.Unmarshal(body, &o); err != nil {
			return nil, fmt.Errorf("install order: %w", err)
		}
		hash, err := store.ParseHash(o.Hash)
		if err != nil {
			return nil, fmt.Errorf("install order: %w", err)
		}
		src := installSource{source: sourcePeer, by: from}
		if o.Auto {
			src.source = sourceAuto
		}
		h.log.Info("admin action", "action", "install", "component", o.Name, "hash", hash.Short(),
			"by", from, "role", transport.PeerRole(ctx).String(), "auto", o.Auto)
		res, err := h.installLocal(ctx, o.Name, hash, src, from)
		if err != nil {
			h.log.Warn("install order refused", "component", o.Name, "hash", hash.Short(), "from", from, "err", err)
			return nil, err
		}
		return json.Marshal(res)
	case transport.RequestRemove:
		var o RemoveOrder
		if err := json.Unmarshal(body, &o); err != nil {
			return nil, fmt.Errorf("remove order: %w", err)
		}
		h.log.Info("admin action", "action", "remove", "component", o.Name, "by", from, "role", transport.PeerRole(ctx).String())
		res, err := h.removeLocal(o.Name)
		if err != nil {
			return nil, err
		}
		return json.Marshal(res)
	case transport.RequestComponents:
		return json.Marshal(h.Components())
	}
	return nil, &transport.RequestError{Status: transport.StatusUnsupported, Msg: kind.String()}
}

// Upload validates wasm, keeps it in the store and installs it as component
// name on targets. A module that breaks a rule changes nothing anywhere.
func (h *Manager) Upload(ctx context.Context, name string, wasm []byte, targets []string) (lp.Hash, []adminapi.InstallResult, error) {
	hash := lp.Hash(sha256.Sum256(wasm))
	if !abi.ValidName(name) {
		return hash, nil, fmt.Errorf("%q is not a valid component name (1-64 ASCII letters, digits, '_', '-', '.', starting with a letter)", name)
	}
	if slices.Contains(targets, h.name) {
		// Load validates and compiles once; installLocal then finds it.
		if _, err := h.rt.Load(ctx, wasm); err != nil {
			return hash, nil, err
		}
	} else if err := h.rt.Validate(ctx, wasm); err != nil {
		return hash, nil, err
	}
	// Kept for the targets to fetch; collected after keep_old if no
	// component here runs it.
	h.vers.Retire(hash, time.Now())
	if _, err := h.store.Put(wasm); err != nil {
		return hash, nil, err
	}
	return hash, h.spread(ctx, targets, name, &hash, installSource{source: sourceUpload}), nil
}

// Remove removes component name from each target, in parallel.
func (h *Manager) Remove(ctx context.Context, targets []string, name string) []adminapi.InstallResult {
	return h.spread(ctx, targets, name, nil, installSource{})
}

// RemoveHere removes component name from this node.
func (h *Manager) RemoveHere(name string) error {
	_, err := h.removeLocal(name)
	return err
}

// AutoInstall orders node target to install c as an auto-install (auto-grow)
// and waits for its result.
func (h *Manager) AutoInstall(ctx context.Context, target string, c cluster.Component) error {
	_, err := h.order(ctx, target, c.Name, &c.Hash, installSource{source: sourceAuto})
	return err
}

// AutoInstalled lists the components auto-installed here, each with the
// time its idleness counts from: its install, or this node's start if later
// (a restart forgets when a component last ran).
func (h *Manager) AutoInstalled() map[string]time.Time {
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
