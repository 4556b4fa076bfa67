package node

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/tsubame-rt/tsubame/abi"
	"github.com/tsubame-rt/tsubame/internal/adminapi"
	"github.com/tsubame-rt/tsubame/internal/mesh/transport"
	"github.com/tsubame-rt/tsubame/lp"
	"github.com/tsubame-rt/tsubame/node/autogrow"
	"github.com/tsubame-rt/tsubame/node/store"
	"github.com/tsubame-rt/tsubame/wasmhost"
)

// hot is a node's hot-install state: the module store and its manifest,
// installs and removals at run time (from the admin API, from peers' install
// orders and from auto-grow), module fetches from peers, the old versions
// kept for suspended LPs, and per-component statistics.
type hot struct {
	n     *Node
	store *store.Store
	// token is the admin bearer token; nil: the module endpoints are off.
	token     *adminapi.Token
	adminTLS  *tls.Config
	maxBytes  int
	keepOld   time.Duration
	configSum map[string]lp.Hash // [components] (and in-memory) modules by name, as loaded at start
	started   time.Time

	// mu serialises installs, removals, the manifest and the version
	// collector; it is never held while a step runs.
	mu       sync.Mutex
	manifest map[string]store.Entry

	vers  versions
	stats sync.Map // component name -> *compStats

	fetchMu  sync.Mutex
	fetching map[lp.Hash]*fetchCall

	grow *autogrow.Grower

	statusMu   sync.Mutex // peerReports' cache
	statusAt   time.Time
	statusReps []adminapi.ComponentsReport

	ctx    context.Context // ends when the node stops
	cancel context.CancelFunc
	wg     sync.WaitGroup // background installs

	repairs []store.Entry // installed modules to fetch again (repair.go)
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

// loadAll opens the module store, loads the configured components and then
// what the manifest says was installed at run time, so a restarted node holds
// what it held.
func (n *Node) loadAll(ctx context.Context, mem map[string][]byte, nodeTLS *tls.Config) error {
	h := &hot{
		n:         n,
		maxBytes:  n.cfg.Modules.MaxBytes,
		keepOld:   n.cfg.Modules.KeepOld,
		configSum: map[string]lp.Hash{},
		manifest:  map[string]store.Entry{},
		fetching:  map[lp.Hash]*fetchCall{},
		started:   time.Now(),
	}
	h.ctx, h.cancel = context.WithCancel(context.Background())
	h.vers.init()
	h.grow = autogrow.New(n.cfg.Autogrow, growHost{h}, n.log)
	n.hot = h
	dir := ""
	if n.cfg.DataDir != "" {
		dir = filepath.Join(n.cfg.DataDir, "modules")
	}
	var err error
	if h.store, err = store.Open(dir); err != nil {
		return fmt.Errorf("node: %w", err)
	}
	if n.cfg.AdminTokenFile != "" {
		if h.token, err = adminapi.Read(n.cfg.AdminTokenFile); err != nil {
			return fmt.Errorf("node: admin_token_file: %w", err)
		}
	}
	h.adminTLS = adminapi.ServerTLS(nodeTLS)
	if err := n.loadComponents(ctx, mem); err != nil {
		return err
	}
	return h.restore(ctx, mem)
}

// restore keeps the configured modules' bytes in the store (peers may fetch
// them) and applies the manifest: components installed or removed at run
// time. A manifest entry for a name the config file also lists wins only if
// the config still lists the module it listed when the entry was written;
// an edited config file is newer intent.
func (h *hot) restore(ctx context.Context, mem map[string][]byte) error {
	n := h.n
	for _, c := range n.eng.Components() {
		h.configSum[c.Name] = c.Hash
		h.vers.track(c.Hash)
		b, ok := mem[c.Name]
		if !ok {
			var err error
			if b, err = os.ReadFile(n.cfg.Components[c.Name]); err != nil {
				return fmt.Errorf("node: component %s: %w", c.Name, err)
			}
		}
		if lp.Hash(sha256.Sum256(b)) != c.Hash {
			n.log.Warn("component file changed while the node started; peers cannot fetch it from here", "component", c.Name)
			continue
		}
		if _, err := h.store.Put(b); err != nil {
			return fmt.Errorf("node: %w", err)
		}
	}
	m, err := h.store.Manifest()
	if err != nil {
		return fmt.Errorf("node: %w", err)
	}
	changed := false
	for _, e := range m.Components {
		cfg, inConfig := h.configSum[e.Name]
		if inConfig && e.ConfigHash != cfg.String() {
			n.log.Info("config file changed since a run-time install or removal; the config wins", "component", e.Name)
			changed = true
			continue
		}
		if e.Removed {
			n.eng.Remove(e.Name)
			h.manifest[e.Name] = e
			continue
		}
		hash, _ := store.ParseHash(e.Hash) // checked by store.Manifest
		b, err := h.store.Get(hash)
		var mod *wasmhost.Module
		if err == nil {
			mod, err = n.rt.Load(ctx, b)
		}
		if err != nil {
			// The node still starts: one bad entry must not keep the others
			// (or the node) down. The entry stays; a module the store lost
			// or holds corrupt is fetched again from a peer once the node
			// has joined (repair.go).
			n.log.Error("cannot restore installed component", "component", e.Name, "hash", hash.Short(), "err", err)
			h.manifest[e.Name] = e
			if mod == nil && (errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrCorrupt)) {
				h.needRepair(e, hash, err)
			}
			continue
		}
		n.eng.Install(e.Name, mod)
		h.vers.track(hash)
		h.manifest[e.Name] = e
		n.log.Info("component restored", "component", e.Name, "hash", hash.Short(), "source", e.Source, "installed_at", e.InstalledAt)
	}
	if changed {
		if err := h.saveManifest(); err != nil {
			return fmt.Errorf("node: %w", err)
		}
	}
	n.refreshComponents()
	return nil
}

// setManifest sets name's manifest entry (nil deletes it) and saves the
// manifest; if that fails the entry is as it was. The caller holds h.mu.
func (h *hot) setManifest(name string, e *store.Entry) error {
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

func (h *hot) saveManifest() error {
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
func (h *hot) installLocal(ctx context.Context, name string, hash lp.Hash, o installSource, prefer string) (adminapi.InstallResult, error) {
	start := time.Now()
	res := adminapi.InstallResult{Node: h.n.cfg.Name, Hash: hash.String()}
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
	h.n.eng.Install(name, mod)
	h.vers.track(hash)
	if held && prev != hash {
		h.vers.retire(prev, h.keepOld)
	}
	h.changed()
	res.OK, res.Millis = true, time.Since(start).Milliseconds()
	h.n.log.Info("component installed", "component", name, "hash", hash.Short(), "bytes", mod.Size(), "source", o.source,
		"by", o.by, "fetched_from", from, "ms", res.Millis)
	return res, nil
}

// module returns the loaded module with hash h: already loaded, from the
// store, or fetched from a peer (then checked, compiled and stored).
func (h *hot) module(ctx context.Context, hash lp.Hash, prefer, component string) (*wasmhost.Module, string, error) {
	if m := h.n.rt.Module(hash); m != nil {
		return m, "", nil
	}
	b, err := h.store.Get(hash)
	from := ""
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) {
			h.n.log.Warn("module store", "err", err)
		}
		if b, from, err = h.fetch(ctx, hash, prefer, component); err != nil {
			return nil, "", err
		}
	}
	m, err := h.n.rt.Load(ctx, b)
	if err != nil {
		return nil, "", err
	}
	h.vers.keep(hash, time.Now().Add(h.keepOld).UnixNano())
	if from != "" {
		if _, err := h.store.Put(b); err != nil {
			h.n.log.Warn("cannot keep a fetched module in the store", "hash", hash.Short(), "err", err)
		}
	}
	return m, from, nil
}

// current returns the module version component name runs here.
func (h *hot) current(name string) (lp.Hash, bool) {
	for _, c := range h.n.eng.Components() {
		if c.Name == name {
			return c.Hash, true
		}
	}
	return lp.Hash{}, false
}

// changed republishes the component list and tells the cluster at once.
func (h *hot) changed() {
	h.n.refreshComponents()
	if h.n.cl != nil {
		h.n.cl.Announce()
	}
}

// removeLocal uninstalls component name here.
func (h *hot) removeLocal(name string) (adminapi.InstallResult, error) {
	start := time.Now()
	res := adminapi.InstallResult{Node: h.n.cfg.Name}
	h.mu.Lock()
	defer h.mu.Unlock()
	prev, held := h.current(name)
	if !held {
		return res, fmt.Errorf("%s does not hold component %q", h.n.cfg.Name, name)
	}
	var tomb *store.Entry // a configured component's removal is remembered
	if cfg, ok := h.configSum[name]; ok {
		tomb = &store.Entry{Name: name, Removed: true, ConfigHash: cfg.String(), InstalledAt: time.Now().UTC()}
	}
	if err := h.setManifest(name, tomb); err != nil {
		return res, err
	}
	h.n.eng.Remove(name)
	h.vers.retire(prev, h.keepOld)
	h.changed()
	res.OK, res.Removed, res.Hash, res.Millis = true, true, prev.String(), time.Since(start).Milliseconds()
	h.n.log.Info("component removed", "component", name, "hash", prev.Short())
	return res, nil
}

// targets resolves an install's or removal's node list: names (self
// included), every live node (all), or this node alone.
func (h *hot) targets(names []string, all bool) ([]string, error) {
	self := h.n.cfg.Name
	if all {
		out := []string{self}
		for _, m := range h.n.cl.Members() {
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
			p, ok := h.n.cl.Peer(name)
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

// installOrder is the body of a RequestInstall.
type installOrder struct {
	Name string `json:"name"`
	Hash string `json:"hash"`
	Auto bool   `json:"auto,omitempty"`
	By   string `json:"by,omitempty"`
}

// removeOrder is the body of a RequestRemove.
type removeOrder struct {
	Name string `json:"name"`
}

// spread installs (hash != nil) or removes component name on each target,
// this node directly and peers by order over QUIC, in parallel.
func (h *hot) spread(ctx context.Context, targets []string, name string, hash *lp.Hash, o installSource) []adminapi.InstallResult {
	out := make([]adminapi.InstallResult, len(targets))
	var wg sync.WaitGroup
	for i, target := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var res adminapi.InstallResult
			var err error
			switch {
			case target == h.n.cfg.Name && hash != nil:
				res, err = h.installLocal(ctx, name, *hash, o, "")
			case target == h.n.cfg.Name:
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
func (h *hot) whileAlive(ctx context.Context, peer string) context.Context {
	ctx, cancel := context.WithCancelCause(ctx)
	go func() {
		t := time.NewTicker(orderPoll)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if _, ok := h.n.cl.Peer(peer); !ok {
					cancel(fmt.Errorf("%s: %w", peer, errDeclaredDead))
					return
				}
			}
		}
	}()
	return ctx
}

// order sends an install or remove order to peer and waits for its result.
func (h *hot) order(ctx context.Context, peer, name string, hash *lp.Hash, o installSource) (adminapi.InstallResult, error) {
	res := adminapi.InstallResult{Node: peer}
	p, ok := h.n.cl.Peer(peer)
	if !ok {
		return res, fmt.Errorf("no live member is named %q", peer)
	}
	kind := transport.RequestRemove
	var body []byte
	if hash != nil {
		kind = transport.RequestInstall
		body, _ = json.Marshal(installOrder{Name: name, Hash: hash.String(), Auto: o.source == sourceAuto, By: h.n.cfg.Name})
	} else {
		body, _ = json.Marshal(removeOrder{Name: name})
	}
	ctx, cancel := context.WithTimeout(ctx, installTimeout)
	defer cancel()
	ctx = h.whileAlive(ctx, peer)
	ans, err := h.n.tr.Request(ctx, p.Meta.QUIC, kind, body, 64<<10)
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
func (h *hot) HandleRequest(ctx context.Context, from string, kind transport.RequestKind, body []byte) ([]byte, error) {
	switch kind {
	case transport.RequestModule:
		if len(body) != len(lp.Hash{}) {
			return nil, fmt.Errorf("module request of %d bytes, want a 32-byte SHA-256", len(body))
		}
		b, err := h.store.Get(lp.Hash(body))
		if errors.Is(err, store.ErrNotFound) {
			return nil, &transport.RequestError{Status: transport.StatusNotFound, Msg: h.n.cfg.Name + " does not have module " + lp.Hash(body).Short()}
		}
		return b, err
	case transport.RequestInstall:
		var o installOrder
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
		res, err := h.installLocal(ctx, o.Name, hash, src, from)
		if err != nil {
			h.n.log.Warn("install order refused", "component", o.Name, "hash", hash.Short(), "from", from, "err", err)
			return nil, err
		}
		return json.Marshal(res)
	case transport.RequestRemove:
		var o removeOrder
		if err := json.Unmarshal(body, &o); err != nil {
			return nil, fmt.Errorf("remove order: %w", err)
		}
		res, err := h.removeLocal(o.Name)
		if err != nil {
			return nil, err
		}
		return json.Marshal(res)
	case transport.RequestComponents:
		return json.Marshal(h.components())
	}
	return nil, &transport.RequestError{Status: transport.StatusUnsupported, Msg: kind.String()}
}

// upload validates wasm, keeps it in the store and installs it as component
// name on targets. A module that breaks a rule changes nothing anywhere.
func (h *hot) upload(ctx context.Context, name string, wasm []byte, targets []string) (lp.Hash, []adminapi.InstallResult, error) {
	hash := lp.Hash(sha256.Sum256(wasm))
	if !abi.ValidName(name) {
		return hash, nil, fmt.Errorf("%q is not a valid component name (1-64 ASCII letters, digits, '_', '-', '.', starting with a letter)", name)
	}
	if slices.Contains(targets, h.n.cfg.Name) {
		// Load validates and compiles once; installLocal then finds it.
		if _, err := h.n.rt.Load(ctx, wasm); err != nil {
			return hash, nil, err
		}
	} else if err := h.n.rt.Validate(ctx, wasm); err != nil {
		return hash, nil, err
	}
	// Kept for the targets to fetch; collected after keep_old if no
	// component here runs it.
	h.vers.keep(hash, time.Now().Add(h.keepOld).UnixNano())
	if _, err := h.store.Put(wasm); err != nil {
		return hash, nil, err
	}
	return hash, h.spread(ctx, targets, name, &hash, installSource{source: sourceUpload}), nil
}
