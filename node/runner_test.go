package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tsubame-rt/tsubame/abi"
	"github.com/tsubame-rt/tsubame/internal/mesh/cluster"
	"github.com/tsubame-rt/tsubame/internal/mesh/dispatch"
	"github.com/tsubame-rt/tsubame/internal/mesh/sched"
	"github.com/tsubame-rt/tsubame/internal/mesh/transport"
	"github.com/tsubame-rt/tsubame/internal/testutil"
	"github.com/tsubame-rt/tsubame/lp"
)

// These tests drive the runner over an in-memory network with a Go stand-in
// for the engine, to pin down routing decisions (re-pick, failure codes,
// push-out, drain) deterministically. The QUIC + wasm tests in node_test.go
// check the same paths end to end.

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// goEngine runs tiny Go components: "echo" replies with its input; "relay"
// calls its input's target ("echo" unless the input names another) and
// replies with the child's result; "slow" waits on gate before echoing, and
// fails with "canceled" if ctx ends first, as the wasm host does; "stuck"
// waits for ctx to end and returns the host's error for a step that did not
// run.
type goEngine struct {
	node  string
	comps map[string]bool
	gate  chan struct{} // nil: slow does not wait
	steps atomic.Int64
}

func (g *goEngine) Holds(c string) bool { return g.comps[c] }

func (g *goEngine) Step(ctx context.Context, p *lp.Process) (lp.Step, error) {
	e := p.ActiveEntry()
	if e == nil || !g.comps[e.Target] {
		return lp.Step{}, errors.New("not held")
	}
	g.steps.Add(1)
	if e.Target == "stuck" {
		<-ctx.Done()
		return lp.Step{}, fmt.Errorf("step not started: %w", ctx.Err())
	}
	idx := p.Active
	e.Steps++
	var out lp.Outcome
	switch e.Target {
	case "echo":
		out = lp.OutcomeReply
		_ = p.Reply(append([]byte(nil), e.Input...))
	case "slow":
		out = lp.OutcomeReply
		if g.gate != nil {
			select {
			case <-g.gate:
			case <-ctx.Done():
				out = lp.OutcomeFail
			}
		}
		if out == lp.OutcomeFail {
			_ = p.Fail(abi.CodeCanceled, "step canceled")
		} else {
			_ = p.Reply(e.Input)
		}
	case "relay":
		if kids := p.Children(idx); len(kids) > 0 {
			c := p.Entries[kids[len(kids)-1]]
			out = lp.OutcomeReply
			if c.State == lp.StateFailed {
				out = lp.OutcomeFail
				_ = p.Fail(c.ErrCode, c.ErrMsg)
			} else {
				_ = p.Reply(append([]byte("relayed:"), c.Output...))
			}
		} else {
			target := "echo"
			if len(e.Input) > 0 && e.Input[0] == '@' {
				target = string(e.Input[1:])
			}
			out = lp.OutcomeCall
			if err := p.Call(target, "k", e.Input, []byte("c"), lp.Limits{}); err != nil {
				return lp.Step{}, err
			}
		}
	}
	s := lp.Step{Node: g.node, Entry: idx, Outcome: out}
	p.Record(s, 64)
	return s, nil
}

// memNet delivers LPs between runners in one process, through the real codec
// so nothing is shared between sender and receiver.
type memNet struct {
	mu    sync.Mutex
	nodes map[string]*runner // by address
	// origins collects finished LPs sent to origin addresses.
	origins map[string]chan *lp.Process
	down    map[string]bool
	sends   atomic.Int64
	// before, if set, runs first on every send; an error fails the send.
	before func(addr string) error
}

func newMemNet() *memNet {
	return &memNet{nodes: map[string]*runner{}, origins: map[string]chan *lp.Process{}, down: map[string]bool{}}
}

func (n *memNet) Send(ctx context.Context, addr string, p *lp.Process) error {
	n.sends.Add(1)
	if n.before != nil {
		if err := n.before(addr); err != nil {
			return err
		}
	}
	b, err := p.MarshalBinary()
	if err != nil {
		return err
	}
	q := new(lp.Process)
	if err := q.UnmarshalBinary(b); err != nil {
		return err
	}
	n.mu.Lock()
	r, ch, down := n.nodes[addr], n.origins[addr], n.down[addr]
	n.mu.Unlock()
	switch {
	case down:
		return fmt.Errorf("dial %s: connection refused", addr)
	case ch != nil:
		ch <- q
		return nil
	case r != nil:
		return r.accept("mem", q)
	}
	return fmt.Errorf("dial %s: no such node", addr)
}

// staticDir is a fixed cluster view.
type staticDir struct {
	mu    sync.Mutex
	peers map[string]cluster.Peer
	self  string
}

func (d *staticDir) set(p cluster.Peer) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.peers[p.Name] = p
}

func (d *staticDir) Holders(c string) []cluster.Peer {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []cluster.Peer
	for _, name := range sortedKeys(d.peers) {
		p := d.peers[name]
		if name != d.self && !p.Meta.Gateway && p.Meta.Holds(c) {
			out = append(out, p)
		}
	}
	return out
}

func (d *staticDir) Peer(name string) (cluster.Peer, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	p, ok := d.peers[name]
	return p, ok
}

func (d *staticDir) Members() []cluster.Peer {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []cluster.Peer
	for _, name := range sortedKeys(d.peers) {
		if name != d.self {
			out = append(out, d.peers[name])
		}
	}
	return out
}

func sortedKeys(m map[string]cluster.Peer) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	for i := range ks {
		for j := i + 1; j < len(ks); j++ {
			if ks[j] < ks[i] {
				ks[i], ks[j] = ks[j], ks[i]
			}
		}
	}
	return ks
}

type testCluster struct {
	net    *memNet
	dir    map[string]*staticDir
	nodes  map[string]*runner
	engs   map[string]*goEngine
	origin chan *lp.Process
}

// newTestCluster starts one runner per spec ("name": components) plus an
// origin "gw" whose finished LPs arrive on origin.
func newTestCluster(t *testing.T, workers, queue int, specs map[string][]string) *testCluster {
	t.Helper()
	tc := &testCluster{net: newMemNet(), dir: map[string]*staticDir{}, nodes: map[string]*runner{}, engs: map[string]*goEngine{}, origin: make(chan *lp.Process, 1024)}
	tc.net.origins["addr-gw"] = tc.origin
	var peers []cluster.Peer
	now := time.Now()
	peers = append(peers, cluster.Peer{Name: "gw", Meta: cluster.Meta{QUIC: "addr-gw", Gateway: true}, Updated: now})
	for name, cs := range specs {
		var comps []cluster.Component
		for _, c := range cs {
			comps = append(comps, cluster.Component{Name: c})
		}
		peers = append(peers, cluster.Peer{Name: name, Meta: cluster.Meta{QUIC: "addr-" + name, Components: comps, Workers: workers}, Updated: now})
	}
	for name, cs := range specs {
		eng := &goEngine{node: name, comps: map[string]bool{}}
		for _, c := range cs {
			eng.comps[c] = true
		}
		d := &staticDir{peers: map[string]cluster.Peer{}, self: name}
		for _, p := range peers {
			d.peers[p.Name] = p
		}
		sc := DefaultConfig().Scheduler
		sc.CPUWeight = 0 // one process hosts every node: its CPU says nothing about one of them
		r, err := newRunner(name, sc, workers, newRunQueue(queue), lp.DefaultLimits, eng, tc.net, d, quiet)
		if err != nil {
			t.Fatal(err)
		}
		tc.net.nodes["addr-"+name] = r
		tc.dir[name], tc.nodes[name], tc.engs[name] = d, r, eng
	}
	for _, r := range tc.nodes {
		r.start()
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = r.drain(ctx)
		})
	}
	return tc
}

func (tc *testCluster) submit(t *testing.T, node, target string, input string) lp.ID {
	t.Helper()
	p := lp.New("gw", target, "k", []byte(input))
	if err := tc.net.Send(context.Background(), "addr-"+node, p); err != nil {
		t.Fatalf("submit to %s: %v", node, err)
	}
	return p.ID
}

func (tc *testCluster) result(t *testing.T) *lp.Process {
	t.Helper()
	select {
	case p := <-tc.origin:
		return p
	case <-time.After(10 * time.Second):
		t.Fatal("timed out waiting for a finished LP")
		return nil
	}
}

func traceNodes(p *lp.Process) []string {
	var out []string
	for _, s := range p.Trace {
		out = append(out, s.Node)
	}
	return out
}

func TestRunnerMigratesToHolder(t *testing.T) {
	tc := newTestCluster(t, 2, 16, map[string][]string{"a": {"relay"}, "b": {"echo"}})
	tc.submit(t, "a", "relay", "hi")
	p := tc.result(t)
	if r := p.Root(); r.State != lp.StateDone || string(r.Output) != "relayed:hi" {
		t.Fatalf("root = %+v", r)
	}
	if got := fmt.Sprint(traceNodes(p)); got != "[a b a]" {
		t.Errorf("trace nodes %s, want [a b a]", got)
	}
}

func TestRunnerRefusesUnknownComponent(t *testing.T) {
	tc := newTestCluster(t, 1, 4, map[string][]string{"a": {"echo"}})
	err := tc.net.Send(context.Background(), "addr-a", lp.New("gw", "relay", "k", nil))
	var ref *transport.Refusal
	if !errors.As(err, &ref) || ref.Reason != transport.UnknownComponent {
		t.Fatalf("send relay LP to a node holding only echo: %v", err)
	}
	if err := tc.net.Send(context.Background(), "addr-a", lp.New("", "echo", "k", nil)); !errors.As(err, &ref) || ref.Reason != transport.Malformed {
		t.Fatalf("send an LP without an origin: %v", err)
	}
	done := lp.New("gw", "echo", "k", nil)
	_ = done.Reply(nil)
	if err := tc.net.Send(context.Background(), "addr-a", done); !errors.As(err, &ref) || ref.Reason != transport.Malformed {
		t.Fatalf("send a finished LP: %v", err)
	}
}

// A call to a component nobody holds fails the child with CodeNoComponent and
// the caller sees it; holders that are all unreachable give CodeUnavailable.
func TestRunnerFailureCodes(t *testing.T) {
	tc := newTestCluster(t, 1, 4, map[string][]string{"a": {"relay"}, "b": {"echo"}})
	tc.submit(t, "a", "relay", "@nothing")
	p := tc.result(t)
	if r := p.Root(); r.State != lp.StateFailed || r.ErrCode != abi.CodeNoComponent {
		t.Errorf("call to an unheld component: root %+v", r)
	}
	tc.net.mu.Lock()
	tc.net.down["addr-b"] = true
	tc.net.mu.Unlock()
	tc.submit(t, "a", "relay", "x")
	p = tc.result(t)
	if r := p.Root(); r.State != lp.StateFailed || r.ErrCode != abi.CodeUnavailable {
		t.Errorf("call to an unreachable holder: root %+v", r)
	}
}

// An LP too large to migrate is not offered to holder after holder: over
// this node's own limit it is not sent at all, and a holder's "too large"
// answer is final. The entry fails with CodeLimit either way.
func TestRunnerTooLargeIsFinal(t *testing.T) {
	tc := newTestCluster(t, 1, 16, map[string][]string{"a": {"relay"}, "b": {"echo"}, "c": {"echo"}, "d": {"slow"}})
	var holderSends, originSends atomic.Int64
	var refuse atomic.Bool // b and c answer every LP as too large
	tc.net.before = func(addr string) error {
		switch addr {
		case "addr-b", "addr-c":
			holderSends.Add(1)
			if refuse.Load() {
				return &transport.ProtocolError{Code: transport.ErrFrameTooLarge, Msg: "LP of 9999 bytes exceeds this node's limit of 2048"}
			}
		case "addr-gw":
			originSends.Add(1)
		}
		return nil
	}
	check := func(what string, wantSends int64) {
		t.Helper()
		p := tc.result(t)
		if r := p.Root(); r.State != lp.StateFailed || r.ErrCode != abi.CodeLimit {
			t.Errorf("%s: root %s with code %d %q, want a failure with code %d", what, r.State, r.ErrCode, r.ErrMsg, abi.CodeLimit)
		}
		if n := holderSends.Swap(0); n != wantSends {
			t.Errorf("%s: %d sends to holders, want %d", what, n, wantSends)
		}
	}

	// a's dispatcher with its own size limit (0: the default).
	limitA := func(max int) {
		r := tc.nodes["a"]
		pol, err := sched.New(r.sc.Policy)
		if err != nil {
			t.Fatal(err)
		}
		r.disp = dispatch.New(dispatch.Config{Policy: pol, Attempts: r.sc.Attempts, MaxBytes: max, Logger: quiet}, tc.net, tc.dir["a"])
	}
	limitA(2048)
	tc.submit(t, "a", "relay", strings.Repeat("x", 3000)) // relay's call to echo doubles it
	check("over a's own limit", 0)

	limitA(0)
	refuse.Store(true)
	tc.submit(t, "a", "relay", "x")
	check("refused as too large by a holder", 1)

	// A finished LP the origin refuses as too large is dropped at once.
	tc.net.before = func(addr string) error {
		if addr == "addr-gw" {
			originSends.Add(1)
			return &transport.ProtocolError{Code: transport.ErrFrameTooLarge, Msg: "too large"}
		}
		return nil
	}
	originSends.Store(0)
	tc.submit(t, "d", "slow", "x")
	testutil.WaitFor(t, "d to try the origin", func() bool { return originSends.Load() > 0 && tc.nodes["d"].running.Load() == 0 })
	if n := originSends.Load(); n != 1 {
		t.Errorf("%d sends of a finished LP its origin refused as too large, want 1", n)
	}
}

// A refused migration re-picks among the remaining holders.
func TestRunnerRepicksAfterRefusal(t *testing.T) {
	tc := newTestCluster(t, 1, 32, map[string][]string{"a": {"relay"}, "b": {"echo"}, "c": {"echo"}})
	tc.nodes["b"].draining.Store(true) // b refuses everything
	for range 20 {
		tc.submit(t, "a", "relay", "x")
	}
	for range 20 {
		p := tc.result(t)
		if r := p.Root(); r.State != lp.StateDone {
			t.Fatalf("root %+v", r)
		}
		if got := fmt.Sprint(traceNodes(p)); got != "[a c a]" {
			t.Fatalf("trace %s, want [a c a]", got)
		}
	}
}

func TestRunnerQueueBound(t *testing.T) {
	tc := newTestCluster(t, 1, 2, map[string][]string{"a": {"slow"}})
	gate := make(chan struct{})
	tc.engs["a"].gate = gate
	defer close(gate)
	// One running, two queued; the fourth is refused as overloaded.
	for i := range 3 {
		tc.submit(t, "a", "slow", fmt.Sprint(i))
		if i == 0 {
			testutil.WaitFor(t, "the first LP to start", func() bool { return tc.nodes["a"].running.Load() == 1 })
		}
	}
	err := tc.net.Send(context.Background(), "addr-a", lp.New("gw", "slow", "k", nil))
	var ref *transport.Refusal
	if !errors.As(err, &ref) || ref.Reason != transport.Overloaded {
		t.Fatalf("fourth LP: %v", err)
	}
}

// An overloaded node pushes LPs waiting in its queue to an idle holder.
func TestRunnerPushOut(t *testing.T) {
	tc := newTestCluster(t, 1, 64, map[string][]string{"a": {"slow"}, "b": {"slow"}})
	gate := make(chan struct{})
	tc.engs["a"].gate = gate
	defer close(gate)
	for i := range 10 {
		tc.submit(t, "a", "slow", fmt.Sprint(i))
		if i == 0 {
			testutil.WaitFor(t, "the first LP to start", func() bool { return tc.nodes["a"].running.Load() == 1 })
		}
	}
	testutil.WaitFor(t, "a to run one and queue nine", func() bool { return tc.nodes["a"].q.len() == 9 })
	// What a's next report would tell b, so b does not send work back.
	pa, _ := tc.dir["b"].Peer("a")
	pa.Meta.Load = 10
	tc.dir["b"].set(pa)
	tc.nodes["a"].pushOut()
	// a's load is 10 (1 worker), b's 0: about half the excess, (10-1)/2+1 = 5,
	// moves, newest first; a's own step is blocked, so all 5 finish on b.
	if n := tc.nodes["a"].q.len(); n != 4 {
		t.Errorf("a has %d LPs queued after push-out, want 4", n)
	}
	for range 5 {
		if got := traceNodes(tc.result(t)); len(got) != 1 || got[0] != "b" {
			t.Errorf("a pushed-out LP finished on %v, want b", got)
		}
	}
}

// Drain hands queued LPs to another holder and waits for running steps.
func TestRunnerDrainHandsOff(t *testing.T) {
	tc := newTestCluster(t, 1, 64, map[string][]string{"a": {"slow"}, "b": {"slow"}})
	gate := make(chan struct{})
	tc.engs["a"].gate = gate
	tc.nodes["a"].sc.OverloadMin = 1e9 // no push-out: only drain moves them
	for i := range 6 {
		tc.submit(t, "a", "slow", fmt.Sprint(i))
		if i == 0 {
			testutil.WaitFor(t, "the first LP to start", func() bool { return tc.nodes["a"].running.Load() == 1 })
		}
	}
	testutil.WaitFor(t, "a to run one and queue five", func() bool { return tc.nodes["a"].q.len() == 5 })
	errc := make(chan error, 1)
	go func() { errc <- tc.nodes["a"].drain(context.Background()) }()
	for range 5 {
		if got := traceNodes(tc.result(t)); len(got) != 1 || got[0] != "b" {
			t.Errorf("a queued LP finished on %v during drain, want b", got)
		}
	}
	close(gate)
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if got := traceNodes(tc.result(t)); len(got) != 1 || got[0] != "a" {
		t.Errorf("the running LP finished on %v, want a", got)
	}
	err := tc.net.Send(context.Background(), "addr-a", lp.New("gw", "slow", "k", nil))
	var ref *transport.Refusal
	if !errors.As(err, &ref) || ref.Reason != transport.ShuttingDown {
		t.Errorf("send to a drained node: %v", err)
	}
}

// A push-out still migrating when drain starts puts back what nobody took
// before drain closes the queue, so those LPs run here too rather than sit
// in a queue no worker reads.
func TestRunnerPushOutRacingDrain(t *testing.T) {
	tc := newTestCluster(t, 1, 64, map[string][]string{"a": {"slow"}, "b": {"slow"}})
	a := tc.nodes["a"]
	gate := make(chan struct{})
	tc.engs["a"].gate = gate
	// b is unreachable; the first send to it waits for release.
	entered, release := make(chan struct{}), make(chan struct{})
	var first atomic.Bool
	tc.net.before = func(addr string) error {
		if addr != "addr-b" {
			return nil
		}
		if first.CompareAndSwap(false, true) {
			close(entered)
			<-release
		}
		return fmt.Errorf("dial %s: connection refused", addr)
	}
	for i := range 10 {
		tc.submit(t, "a", "slow", fmt.Sprint(i))
		if i == 0 {
			testutil.WaitFor(t, "the first LP to start", func() bool { return a.running.Load() == 1 })
		}
	}
	testutil.WaitFor(t, "a to run one and queue nine", func() bool { return a.q.len() == 9 })
	pushed := make(chan struct{})
	go func() { a.pushOut(); close(pushed) }()
	select {
	case <-entered: // the push-out holds the five newest LPs
	case <-time.After(10 * time.Second):
		t.Fatal("push-out did not try b")
	}
	var drained atomic.Bool
	errc := make(chan error, 1)
	go func() { errc <- a.drain(context.Background()); drained.Store(true) }()
	testutil.WaitFor(t, "a to start draining", a.draining.Load)
	close(gate)
	for range 5 { // the running LP and the four left in the queue
		tc.result(t)
	}
	testutil.WaitFor(t, "a's worker to go idle", func() bool { return a.running.Load() == 0 && a.q.len() == 0 })
	// If drain closed the queue under the push-out, let the worker leave
	// before the push-out puts its LPs back: that is how they got stranded.
	testutil.WaitFor(t, "drain to finish or to wait for the push-out", func() bool {
		a.q.mu.Lock()
		closed := a.q.closed
		a.q.mu.Unlock()
		return !closed || drained.Load()
	})
	close(release)
	<-pushed
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	for range 5 {
		if got := traceNodes(tc.result(t)); len(got) != 1 || got[0] != "a" {
			t.Errorf("a pushed-out LP nobody took finished on %v, want a", got)
		}
	}
}

// Drain bounded by a context gives up on steps that do not finish.
func TestRunnerDrainDeadline(t *testing.T) {
	tc := newTestCluster(t, 1, 4, map[string][]string{"a": {"slow"}})
	tc.engs["a"].gate = make(chan struct{}) // never opens; the step ends when ctx does
	tc.submit(t, "a", "slow", "x")
	testutil.WaitFor(t, "the step to start", func() bool { return tc.nodes["a"].running.Load() == 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := tc.nodes["a"].drain(ctx); err == nil {
		t.Fatal("drain with a stuck step reported success")
	}
}

// A runner stopping hard (Node.Close) drops the LPs it holds: neither the
// steps it cancels ("canceled", or a host error for a step that did not run)
// nor the LPs waiting in its queue reach anyone, so the origin resends
// instead of answering with a failure the request did not cause.
func TestRunnerHardStopDropsLPs(t *testing.T) {
	tc := newTestCluster(t, 2, 16, map[string][]string{"a": {"slow", "stuck", "relay"}, "b": {"echo"}})
	a := tc.nodes["a"]
	tc.engs["a"].gate = make(chan struct{}) // never opens: slow ends when ctx does
	tc.submit(t, "a", "slow", "x")
	tc.submit(t, "a", "stuck", "y")
	testutil.WaitFor(t, "both steps to start", func() bool { return a.running.Load() == 2 })
	for range 4 {
		tc.submit(t, "a", "relay", "queued") // would call echo on b
	}
	sends := tc.net.sends.Load()
	// What Node.Close does to the runner, but for discarding the queue: the
	// workers must drop what they find there too.
	a.draining.Store(true)
	a.cancel()
	a.q.close()
	a.wg.Wait()
	select {
	case p := <-tc.origin:
		t.Fatalf("a stopping hard sent LP %s to its origin: %s code %d", p.ID, p.Root().State, p.Root().ErrCode)
	default:
	}
	if got := tc.net.sends.Load() - sends; got != 0 {
		t.Errorf("a made %d sends after it stopped, want none", got)
	}
}

// yieldEngine yields to the scheduler in Holds, which accept calls between
// its draining check and its push, so that a drain lands in that window
// often.
type yieldEngine struct{ *goEngine }

func (y yieldEngine) Holds(c string) bool {
	runtime.Gosched()
	return y.goEngine.Holds(c)
}

// Every LP accept acknowledges while the runner drains is run before the
// workers leave: none is stranded in a closed queue with no worker left.
func TestRunnerAcceptRacingDrain(t *testing.T) {
	sc := DefaultConfig().Scheduler
	sc.CPUWeight = 0
	for iter := range 50 {
		eng := &goEngine{node: "a", comps: map[string]bool{"echo": true}}
		dir := &staticDir{peers: map[string]cluster.Peer{}, self: "a"}
		r, err := newRunner("a", sc, 2, newRunQueue(1<<16), lp.DefaultLimits, yieldEngine{eng}, newMemNet(), dir, quiet)
		if err != nil {
			t.Fatal(err)
		}
		var accepted, delivered atomic.Int64
		r.deliver = func(*lp.Process) { delivered.Add(1) }
		r.start()
		var wg sync.WaitGroup
		for range 2 {
			wg.Go(func() {
				for range 5000 {
					err := r.accept("t", lp.New("a", "echo", "k", nil))
					if err == nil {
						accepted.Add(1)
						continue
					}
					if ref := (*transport.Refusal)(nil); !errors.As(err, &ref) || ref.Reason != transport.ShuttingDown {
						t.Errorf("accept during drain: %v, want a shutting-down refusal", err)
					}
					return
				}
			})
		}
		testutil.WaitFor(t, "the first LP to be accepted", func() bool { return accepted.Load() > 0 })
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err = r.drain(ctx)
		cancel()
		wg.Wait()
		if err != nil {
			t.Fatal(err)
		}
		if a, d := accepted.Load(), delivered.Load(); a != d {
			t.Fatalf("iteration %d: %d LPs accepted but %d run; %d left in the closed queue", iter, a, d, r.q.len())
		}
	}
}

func TestRunnerRates(t *testing.T) {
	var w rateWindow
	t0 := time.Unix(100, 0)
	w.sample(t0, 0, 0)
	w.sample(t0.Add(500*time.Millisecond), 50, 10)
	if in, out := w.get(); in != 100 || out != 20 {
		t.Errorf("rates %v/%v, want 100/20", in, out)
	}
	for i := 1; i <= 20; i++ {
		w.sample(t0.Add(500*time.Millisecond+time.Duration(i)*100*time.Millisecond), 50, 10)
	}
	if in, _ := w.get(); in != 0 {
		t.Errorf("rate after a quiet second %v, want 0", in)
	}
}
