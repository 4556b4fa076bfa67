// Package cluster is membership and load sharing between Tsubame nodes and
// gateways: who is alive, where to reach them over QUIC, which components
// they hold, and how loaded they are.
//
// Liveness and failure detection are hashicorp/memberlist (SWIM with
// Lifeguard), tuned for a LAN. On top of it every member sends every other
// member a small load report each ReportInterval, like the paper's multicast:
// the report doubles as a freshness signal, and a member whose last report
// is older than StaleAfter is not a scheduling candidate even before
// memberlist declares it dead.
//
// cluster never moves LPs, never chooses a destination and never measures
// load itself: the node hands it a Meta to advertise and asks it for peers.
package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/tsubame-rt/tsubame/lp"
)

// Component is one component a member holds: its name and the module
// version it runs for new entries.
type Component struct {
	Name string
	Hash lp.Hash
}

// Meta is what a member advertises.
type Meta struct {
	QUIC       string      // its QUIC (transport) address
	Gateway    bool        // a gateway: holds no components, is only an origin
	Components []Component // sorted by name; shared, never modify
	// Load is the one-dimensional load ratio: 0 idle, 1 saturated, above 1
	// overloaded (work is queueing).
	Load    float64
	Queue   int // LPs waiting in its run queue
	Workers int // its worker count
	// In and Out are LPs per second it accepted and handed on (to peers or
	// origins), over the last second or so: for `tsubame status`.
	In, Out float64
}

// Holds reports whether m lists component name.
func (m Meta) Holds(name string) bool {
	for _, c := range m.Components {
		if c.Name == name {
			return true
		}
	}
	return false
}

// Peer is another member as this member sees it.
type Peer struct {
	Name string
	Meta Meta
	// Updated is when its last load report arrived here (local clock, so no
	// clock synchronisation is needed); zero if none has yet.
	Updated time.Time
}

// Config configures Join. Zero durations take the defaults below.
type Config struct {
	Name  string   // unique member name; also the name LPs use as origin
	Bind  string   // gossip address (UDP and TCP), e.g. "127.0.0.1:0"
	Seeds []string // gossip addresses of members to join through
	// ReportInterval is how often a load report goes to every member
	// (default 100ms). StaleAfter is how old a report may be before its
	// member stops being a candidate (default 500ms).
	ReportInterval, StaleAfter time.Duration
	// Failure detection (memberlist): a member is probed every ProbeInterval
	// (default 200ms), a probe fails after ProbeTimeout (default 100ms), and a
	// suspected member is declared dead after SuspicionMult probe intervals
	// (default 4, scaled by log10 of the cluster size, stretched while
	// unconfirmed). GossipInterval (default 50ms) paces membership gossip.
	ProbeInterval, ProbeTimeout, GossipInterval time.Duration
	SuspicionMult                               int
	// RejoinRetry is how often this member tries to join the configured
	// seeds that are not live members, and the last addresses of members that
	// failed or left (default 1s). memberlist never probes a dead member
	// again, so without this a restarted seed-less member, or the two sides
	// of a healed partition, would stay apart for good.
	RejoinRetry time.Duration
	// ReconnectFor is how long the address of a member that failed or left
	// keeps being retried (default 24h, as Serf's reconnect_timeout); at
	// most maxReconnect such addresses are kept, the oldest dropped first.
	ReconnectFor time.Duration
	// SecretKey, if set (16, 24 or 32 bytes), encrypts and authenticates all
	// gossip with AES-GCM; members without it cannot join or inject reports.
	SecretKey []byte
	Logger    *slog.Logger
	// OnMember, if set, hears of each membership change: "join", "leave"
	// (a member left gracefully) or "fail" (it stopped answering). It must
	// not block (metrics).
	OnMember func(event string)
}

// Defaults for Config.
const (
	DefaultReportInterval = 100 * time.Millisecond
	DefaultStaleAfter     = 500 * time.Millisecond
	DefaultProbeInterval  = 200 * time.Millisecond
	DefaultProbeTimeout   = 100 * time.Millisecond
	DefaultGossipInterval = 50 * time.Millisecond
	DefaultSuspicionMult  = 4
	DefaultRejoinRetry    = time.Second
	DefaultReconnectFor   = 24 * time.Hour
)

// maxReconnect bounds the failed members whose addresses are retried.
const maxReconnect = 256

// maxInlineReport is the largest report sent with its component list over
// UDP: below a LAN MTU after memberlist's framing. A larger list travels over
// memberlist's reliable (TCP) channel when it changes and every
// fullEvery, while the UDP reports carry only its digest.
const (
	maxInlineReport = 1200
	fullEvery       = 5 * time.Second
)

func (c Config) withDefaults() Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.ReportInterval, DefaultReportInterval)
	def(&c.StaleAfter, DefaultStaleAfter)
	def(&c.ProbeInterval, DefaultProbeInterval)
	def(&c.ProbeTimeout, DefaultProbeTimeout)
	def(&c.GossipInterval, DefaultGossipInterval)
	def(&c.RejoinRetry, DefaultRejoinRetry)
	def(&c.ReconnectFor, DefaultReconnectFor)
	if c.SuspicionMult <= 0 {
		c.SuspicionMult = DefaultSuspicionMult
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Cluster is this member's view of the cluster.
type Cluster struct {
	cfg   Config
	local func() Meta
	log   *slog.Logger
	ml    *memberlist.Memberlist
	epoch uint64

	mu      sync.RWMutex
	members map[string]*member // alive members other than self, by name
	gone    map[string]gone    // failed or left members, by name: retried

	stop     chan struct{}
	done     sync.WaitGroup
	leaveMu  sync.Mutex
	left     bool
	needFull chan string   // members that just joined and need our component list
	nudge    chan struct{} // Announce: report now rather than at the next tick
}

// gone is a member that failed or left: where it was, and since when.
type gone struct {
	addr  string
	since time.Time
}

// member is what we know of one other member.
type member struct {
	meta       nodeMeta
	node       *memberlist.Node
	updated    time.Time // when the last report arrived; zero: none yet
	epoch, seq uint64
	load       float64
	in, out    float64
	queue      int
	workers    int
	digest     uint64
	comps      []Component
	compsKnown bool // comps matches digest
	sending    bool // a reliable full report to it is in flight
	lastFull   time.Time
	fullDigest uint64 // digest of the last full list it was sent
}

// Join starts this member's gossip listener, joins the cluster through
// c.Seeds and starts sending load reports; local is sampled for each one.
// If no seed answers, Join still succeeds: the member runs alone and keeps
// retrying every RejoinRetry, so members can start in any order. For as long
// as it runs it also retries seeds that are not live members and members it
// saw fail or leave, so restarts and healed partitions merge again.
func Join(ctx context.Context, c Config, local func() Meta) (*Cluster, error) {
	c = c.withDefaults()
	if c.Name == "" {
		return nil, errors.New("cluster: member name is empty")
	}
	host, port, err := splitBind(c.Bind)
	if err != nil {
		return nil, fmt.Errorf("cluster: gossip address %q: %w", c.Bind, err)
	}
	cl := &Cluster{
		cfg:      c,
		local:    local,
		log:      c.Logger,
		epoch:    uint64(time.Now().UnixNano()),
		members:  map[string]*member{},
		gone:     map[string]gone{},
		stop:     make(chan struct{}),
		needFull: make(chan string, 64),
		nudge:    make(chan struct{}, 1),
	}
	mc := memberlist.DefaultLANConfig()
	mc.Name = c.Name
	mc.BindAddr, mc.BindPort = host, port
	mc.AdvertisePort = port
	mc.ProbeInterval = c.ProbeInterval
	mc.ProbeTimeout = c.ProbeTimeout
	mc.GossipInterval = c.GossipInterval
	mc.SuspicionMult = c.SuspicionMult
	mc.TCPTimeout = time.Second
	// A member restarted faster than failure detection is still "alive" to
	// the others and knows none of them: only a push-pull merges it back,
	// so it runs every 2s rather than memberlist's 30s.
	mc.PushPullInterval = 2 * time.Second
	mc.GossipToTheDeadTime = 5 * time.Second
	// A restarted member may come back under its name on a new address.
	mc.DeadNodeReclaimTime = 2 * time.Second
	mc.SecretKey = c.SecretKey
	mc.Delegate = (*delegate)(cl)
	mc.Events = (*events)(cl)
	mc.Logger = log.New(&logWriter{log: cl.log}, "", 0)
	ml, err := memberlist.Create(mc)
	if err != nil {
		return nil, fmt.Errorf("cluster: start gossip on %s: %w", c.Bind, err)
	}
	cl.ml = ml
	if len(c.Seeds) > 0 {
		if _, err := ml.Join(c.Seeds); err != nil {
			cl.log.Warn("no seed answered; running alone and retrying", "seeds", c.Seeds, "err", err)
		}
	}
	cl.done.Add(3)
	go cl.rejoin()
	go cl.reportLoop()
	go cl.fullLoop()
	return cl, nil
}

func splitBind(bind string) (string, int, error) {
	if bind == "" {
		bind = "127.0.0.1:0"
	}
	host, p, err := net.SplitHostPort(bind)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("bad port %q", p)
	}
	if host == "" {
		host = "0.0.0.0"
	}
	return host, port, nil
}

// Name returns this member's name.
func (c *Cluster) Name() string { return c.cfg.Name }

// Addr returns this member's gossip address, for other members' seeds.
func (c *Cluster) Addr() string {
	n := c.ml.LocalNode()
	return net.JoinHostPort(n.Addr.String(), strconv.Itoa(int(n.Port)))
}

// StaleAfter returns the configured freshness bound.
func (c *Cluster) StaleAfter() time.Duration { return c.cfg.StaleAfter }

// Peers returns the live members with fresh reports, excluding self, sorted
// by name.
func (c *Cluster) Peers() []Peer {
	return c.collect(func(*member) bool { return true })
}

// Holders returns the live, fresh, non-gateway members holding component,
// excluding self, sorted by name.
func (c *Cluster) Holders(component string) []Peer {
	return c.collect(func(m *member) bool {
		if m.meta.Gateway || !m.compsKnown {
			return false
		}
		for _, x := range m.comps {
			if x.Name == component {
				return true
			}
		}
		return false
	})
}

func (c *Cluster) collect(keep func(*member) bool) []Peer {
	now := time.Now()
	c.mu.RLock()
	var out []Peer
	for name, m := range c.members {
		if m.updated.IsZero() || now.Sub(m.updated) > c.cfg.StaleAfter || !keep(m) {
			continue
		}
		out = append(out, m.peer(name))
	}
	c.mu.RUnlock()
	slices.SortFunc(out, func(a, b Peer) int { return strings.Compare(a.Name, b.Name) })
	return out
}

func (m *member) peer(name string) Peer {
	p := Peer{Name: name, Updated: m.updated, Meta: Meta{
		QUIC: m.meta.QUIC, Gateway: m.meta.Gateway,
		Load: m.load, Queue: m.queue, Workers: m.workers, In: m.in, Out: m.out,
	}}
	if m.compsKnown {
		p.Meta.Components = m.comps
	}
	return p
}

// Peer returns the live member called name, fresh or not (an LP's origin
// must be reachable even when its reports lag). Self is included.
func (c *Cluster) Peer(name string) (Peer, bool) {
	if name == c.cfg.Name {
		return Peer{Name: name, Meta: c.local(), Updated: time.Now()}, true
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	m, ok := c.members[name]
	if !ok {
		return Peer{}, false
	}
	return m.peer(name), true
}

// Members returns every live member other than self, fresh or not, sorted by
// name: what `tsubame status` shows.
func (c *Cluster) Members() []Peer {
	c.mu.RLock()
	out := make([]Peer, 0, len(c.members))
	for name, m := range c.members {
		out = append(out, m.peer(name))
	}
	c.mu.RUnlock()
	slices.SortFunc(out, func(a, b Peer) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Announce sends this member's report to every member now rather than at
// the next tick. The node calls it when its components change, so peers
// route to a new holder within a round trip instead of a report interval.
func (c *Cluster) Announce() {
	select {
	case c.nudge <- struct{}{}:
	default: // one is pending already
	}
}

// Leave tells the cluster this member is going, waits (bounded by ctx, at
// most a second) for that to spread, and stops gossip. Idempotent.
func (c *Cluster) Leave(ctx context.Context) error {
	timeout := time.Second
	if d, ok := ctx.Deadline(); ok {
		timeout = min(timeout, max(time.Until(d), time.Millisecond))
	}
	if err := c.stopGossip(func() error { return c.ml.Leave(timeout) }); err != nil {
		return fmt.Errorf("cluster: leave: %w", err)
	}
	return nil
}

// Close stops gossip without telling anyone, as a crash would: the others
// notice through failure detection. For tests of failure handling.
func (c *Cluster) Close() error {
	return c.stopGossip(func() error { return nil })
}

// stopGossip runs leave (once), then shuts memberlist and our loops down.
func (c *Cluster) stopGossip(leave func() error) error {
	c.leaveMu.Lock()
	defer c.leaveMu.Unlock()
	if c.left {
		return nil
	}
	c.left = true
	close(c.stop)
	err := leave()
	if serr := c.ml.Shutdown(); err == nil {
		err = serr
	}
	c.done.Wait()
	return err
}

// rejoin joins, every RejoinRetry, the seeds and failed members that are not
// live members now: Serf's reconnect, which memberlist leaves to its user.
// Joining a live cluster is a push-pull of state; the side that finds itself
// declared dead refutes it with a higher incarnation, and both views merge.
func (c *Cluster) rejoin() {
	defer c.done.Done()
	t := time.NewTicker(c.cfg.RejoinRetry)
	defer t.Stop()
	failing := map[string]bool{} // addresses whose last join failed: logged once
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
		}
		for _, addr := range c.rejoinTargets(time.Now()) {
			select {
			case <-c.stop:
				return
			default:
			}
			n, err := c.ml.Join([]string{addr})
			switch {
			case err == nil && n > 0:
				if failing[addr] {
					c.log.Info("rejoined", "through", addr)
				}
				delete(failing, addr)
			case !failing[addr]:
				c.log.Debug("rejoin failed; retrying", "through", addr, "err", err)
				failing[addr] = true
			}
		}
	}
}

// rejoinTargets returns the seeds and failed members' addresses at which no
// live member (nor this one) is.
func (c *Cluster) rejoinTargets(now time.Time) []string {
	live := map[string]bool{c.Addr(): true}
	var out []string
	c.mu.Lock()
	for _, m := range c.members {
		live[m.node.Address()] = true
	}
	for name, g := range c.gone {
		if now.Sub(g.since) > c.cfg.ReconnectFor {
			delete(c.gone, name)
			continue
		}
		if !live[g.addr] {
			out = append(out, g.addr)
		}
	}
	c.mu.Unlock()
	for _, s := range c.cfg.Seeds {
		if !live[s] && !live[resolve(s)] && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// resolve returns a seed with its host resolved to an IP, as memberlist
// reports member addresses, or the seed itself when that fails.
func resolve(seed string) string {
	a, err := net.ResolveUDPAddr("udp", seed)
	if err != nil {
		return seed
	}
	return a.String()
}

// reportLoop sends this member's report to every other member each
// ReportInterval: all-to-all, like the paper's multicast. That is N² small
// UDP packets per interval, fine for tens of members (hierarchy is the
// paper's future work beyond ~100).
func (c *Cluster) reportLoop() {
	defer c.done.Done()
	t := time.NewTicker(c.cfg.ReportInterval)
	defer t.Stop()
	var seq uint64
	var buf []byte
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
		case <-c.nudge:
		}
		seq++
		r := c.report(seq)
		buf = r.append(buf[:0], true)
		inline := len(buf) <= maxInlineReport
		if !inline {
			buf = r.append(buf[:0], false)
		}
		c.mu.RLock()
		targets := make([]*memberlist.Node, 0, len(c.members))
		for _, m := range c.members {
			targets = append(targets, m.node)
		}
		c.mu.RUnlock()
		for _, n := range targets {
			if err := c.ml.SendBestEffort(n, buf); err != nil {
				c.log.Debug("send load report", "to", n.Name, "err", err)
			}
		}
		if !inline {
			c.sendFullWhereNeeded(r)
		}
	}
}

func (c *Cluster) report(seq uint64) *report {
	m := c.local()
	return &report{
		Name: c.cfg.Name, Epoch: c.epoch, Seq: seq,
		Load: m.Load, Queue: m.Queue, Workers: m.Workers, In: m.In, Out: m.Out,
		Digest: digest(m.Components), Components: m.Components,
	}
}

// sendFullWhereNeeded sends the full report over the reliable channel to each
// member that has not had this component list, or not for fullEvery. One
// send per member at a time, so a dead member costs one stuck goroutine, not
// one per interval.
func (c *Cluster) sendFullWhereNeeded(r *report) {
	now := time.Now()
	var full []byte
	c.mu.Lock()
	defer c.mu.Unlock()
	for name, m := range c.members {
		if m.sending || (m.fullDigest == r.Digest && now.Sub(m.lastFull) < fullEvery) {
			continue
		}
		if full == nil {
			full = r.append(nil, true)
		}
		m.sending = true
		n, d := m.node, r.Digest
		c.done.Add(1)
		go func() {
			defer c.done.Done()
			err := c.ml.SendReliable(n, full)
			c.mu.Lock()
			defer c.mu.Unlock()
			if m, ok := c.members[name]; ok {
				m.sending = false
				if err == nil {
					m.fullDigest, m.lastFull = d, time.Now()
				}
			}
			if err != nil {
				c.log.Debug("send component list", "to", name, "err", err)
			}
		}()
	}
}

// fullLoop answers joins at once: a new member gets a report (over UDP, or
// the full list reliably when large) without waiting for the next tick, so
// it becomes a candidate as soon as possible.
func (c *Cluster) fullLoop() {
	defer c.done.Done()
	for {
		select {
		case <-c.stop:
			return
		case name := <-c.needFull:
			c.mu.RLock()
			m, ok := c.members[name]
			var n *memberlist.Node
			if ok {
				n = m.node
			}
			c.mu.RUnlock()
			if !ok {
				continue
			}
			r := c.report(0)
			if b := r.append(nil, true); len(b) <= maxInlineReport {
				_ = c.ml.SendBestEffort(n, b)
			} else {
				c.sendFullWhereNeeded(r)
			}
		}
	}
}

// receive applies one report.
func (c *Cluster) receive(b []byte) {
	r, err := decodeReport(b)
	if err != nil {
		c.log.Debug("drop malformed report", "err", err)
		return
	}
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	m, ok := c.members[r.Name]
	if !ok {
		return // not (or no longer) a live member: memberlist decides who is
	}
	// Reorder guard: a report older than the last one applied is dropped,
	// except seq 0 (sent on join, outside the sequence) within an epoch.
	if r.Epoch < m.epoch || (r.Epoch == m.epoch && r.Seq != 0 && r.Seq < m.seq) {
		return
	}
	m.epoch = r.Epoch
	if r.Seq != 0 {
		m.seq = r.Seq
	}
	m.updated = now
	m.load, m.queue, m.workers, m.in, m.out = r.Load, r.Queue, r.Workers, r.In, r.Out
	switch {
	case r.HasComps:
		m.digest, m.comps, m.compsKnown = r.Digest, r.Components, true
	case r.Digest != m.digest:
		// The list changed and the new one has not arrived yet: hold
		// nothing rather than advertise components it may have dropped.
		m.digest, m.comps, m.compsKnown = r.Digest, nil, false
	}
}

// delegate implements memberlist.Delegate.
type delegate Cluster

func (d *delegate) NodeMeta(limit int) []byte {
	m := (*Cluster)(d).local()
	b := nodeMeta{QUIC: m.QUIC, Gateway: m.Gateway}.encode()
	if len(b) > limit {
		// Only an absurd address gets here; advertising nothing makes the
		// member unreachable, which its peers log, instead of a crash.
		d.log.Error("node meta exceeds memberlist limit", "bytes", len(b), "limit", limit)
		return nil
	}
	return b
}

func (d *delegate) NotifyMsg(b []byte)                         { (*Cluster)(d).receive(b) }
func (d *delegate) GetBroadcasts(overhead, limit int) [][]byte { return nil }
func (d *delegate) LocalState(join bool) []byte                { return nil }
func (d *delegate) MergeRemoteState(buf []byte, join bool)     {}

// events implements memberlist.EventDelegate: it keeps members in step with
// memberlist's view of who is alive.
type events Cluster

func (e *events) NotifyJoin(n *memberlist.Node)   { e.upsert(n, true) }
func (e *events) NotifyUpdate(n *memberlist.Node) { e.upsert(n, false) }

func (e *events) upsert(n *memberlist.Node, join bool) {
	if n.Name == e.cfg.Name {
		return
	}
	meta, err := decodeMeta(n.Meta)
	if err != nil {
		e.log.Warn("member with unreadable meta", "peer", n.Name, "err", err)
	}
	node := *n
	e.mu.Lock()
	m, ok := e.members[n.Name]
	if !ok {
		m = &member{}
		e.members[n.Name] = m
	}
	m.meta, m.node = meta, &node
	delete(e.gone, n.Name)
	e.mu.Unlock()
	if join || !ok {
		if e.cfg.OnMember != nil {
			e.cfg.OnMember("join")
		}
		e.log.Info("member joined", "peer", n.Name, "gossip", n.Address(), "quic", meta.QUIC, "gateway", meta.Gateway)
		select {
		case e.needFull <- n.Name:
		default: // the next periodic report covers it
		}
	}
}

func (e *events) NotifyLeave(n *memberlist.Node) {
	if n.Name == e.cfg.Name {
		return
	}
	e.mu.Lock()
	delete(e.members, n.Name)
	e.gone[n.Name] = gone{addr: n.Address(), since: time.Now()}
	if len(e.gone) > maxReconnect {
		oldest := n.Name
		for name, g := range e.gone {
			if g.since.Before(e.gone[oldest].since) {
				oldest = name
			}
		}
		delete(e.gone, oldest)
	}
	e.mu.Unlock()
	event := "fail"
	if n.State == memberlist.StateLeft {
		event = "leave"
	}
	if e.cfg.OnMember != nil {
		e.cfg.OnMember(event)
	}
	if n.State == memberlist.StateLeft {
		e.log.Info("member left", "peer", n.Name)
	} else {
		e.log.Warn("member failed", "peer", n.Name, "gossip", n.Address())
	}
}

// logWriter routes memberlist's log lines ("[LEVEL] memberlist: msg") to slog.
type logWriter struct{ log *slog.Logger }

func (w *logWriter) Write(p []byte) (int, error) {
	line := string(bytes.TrimSpace(p))
	level := slog.LevelInfo
	for prefix, l := range map[string]slog.Level{"[DEBUG]": slog.LevelDebug, "[INFO]": slog.LevelInfo, "[WARN]": slog.LevelWarn, "[ERR]": slog.LevelError, "[ERROR]": slog.LevelError} {
		if rest, ok := strings.CutPrefix(line, prefix); ok {
			level, line = l, strings.TrimSpace(rest)
			break
		}
	}
	// memberlist's INFO lines (joins, leaves) repeat what the events above
	// log in our words.
	if level == slog.LevelInfo || strings.Contains(line, net.ErrClosed.Error()) {
		level = slog.LevelDebug // or a send racing our own shutdown
	}
	w.log.Log(context.Background(), level, line)
	return len(p), nil
}

var (
	_ memberlist.Delegate      = (*delegate)(nil)
	_ memberlist.EventDelegate = (*events)(nil)
	_ io.Writer                = (*logWriter)(nil)
)
