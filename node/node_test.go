package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tsubame-rt/tsubame/abi"
	"github.com/tsubame-rt/tsubame/internal/adminapi"
	"github.com/tsubame-rt/tsubame/internal/mesh/cluster"
	"github.com/tsubame-rt/tsubame/internal/mesh/pki"
	"github.com/tsubame-rt/tsubame/internal/mesh/transport"
	"github.com/tsubame-rt/tsubame/internal/testutil"
	"github.com/tsubame-rt/tsubame/lp"
	"github.com/tsubame-rt/tsubame/node/engine"
	"github.com/tsubame-rt/tsubame/wasmhost"
)

// These tests run real nodes in one process: QUIC with mutual TLS on
// loopback, memberlist gossip, wazero running the committed modules. A test
// origin stands in for the gateway: it joins the cluster as a member holding
// no components, sends LPs to nodes and receives them back when finished.

// cacheDir is shared by every node of the package's tests so each module is
// compiled once per run, not once per node.
var cacheDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "tsubame-node-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	cacheDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func testCA(t testing.TB) *pki.CA {
	t.Helper()
	ca, err := pki.NewCA("test-ca")
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

func module(t testing.TB, file string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "testdata", file))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// testConfig is a node config on loopback port 0 with CPU left out of load
// (every node of the test shares the process).
func testConfig(name string, seeds ...string) Config {
	c := DefaultConfig()
	c.Name, c.Listen, c.Gossip, c.Admin = name, "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	c.Workers = 2
	c.Seeds = seeds
	c.DataDir = cacheDir
	c.Scheduler.CPUWeight = 0
	return c
}

// startNode starts a node holding mods (component name -> testdata file).
func startNode(t testing.TB, ca *pki.CA, c Config, mods map[string]string) *Node {
	t.Helper()
	return startNodeOpts(t, ca, c, mods, nil)
}

func startNodeOpts(t testing.TB, ca *pki.CA, c Config, mods map[string]string, opt func(*Options)) *Node {
	t.Helper()
	tlsConf, err := ca.IssueTLS(c.Name)
	if err != nil {
		t.Fatal(err)
	}
	mem := map[string][]byte{}
	for name, file := range mods {
		mem[name] = module(t, file)
	}
	o := Options{TLS: tlsConf, Modules: mem, Logger: quiet}
	if opt != nil {
		opt(&o)
	}
	n, err := New(context.Background(), c, o)
	if err != nil {
		t.Fatalf("start node %s: %v", c.Name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = n.Shutdown(ctx)
	})
	return n
}

// origin is a test-only member that sends LPs and takes finished ones back.
type origin struct {
	name string
	tr   *transport.Transport
	cl   *cluster.Cluster
	mu   sync.Mutex
	got  map[lp.ID]chan *lp.Process
}

func (o *origin) AcceptLP(ctx context.Context, from string, p *lp.Process) error {
	if !p.Finished() {
		return &transport.Refusal{Reason: transport.Malformed, Detail: "an origin only takes finished LPs"}
	}
	o.mu.Lock()
	ch := o.got[p.ID]
	o.mu.Unlock()
	if ch == nil {
		return nil // a duplicate or a stranger: dropped, like a gateway would
	}
	select {
	case ch <- p:
	default:
	}
	return nil
}

func newOrigin(t testing.TB, ca *pki.CA, name string, seeds ...string) *origin {
	t.Helper()
	return newOriginServing(t, ca, name, nil, seeds...)
}

// newOriginServing is newOrigin answering peers' requests with req (a blob
// store, as a gateway's).
func newOriginServing(t testing.TB, ca *pki.CA, name string, req transport.RequestHandler, seeds ...string) *origin {
	t.Helper()
	tlsConf, err := ca.IssueTLS(name)
	if err != nil {
		t.Fatal(err)
	}
	o := &origin{name: name, got: map[lp.ID]chan *lp.Process{}}
	o.tr, err = transport.Listen(context.Background(), transport.Config{Listen: "127.0.0.1:0", TLS: tlsConf, Handler: o, Requests: req, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = o.tr.Close() })
	o.cl, err = cluster.Join(context.Background(), cluster.Config{Name: name, Bind: "127.0.0.1:0", Seeds: seeds, Logger: quiet},
		func() cluster.Meta { return cluster.Meta{QUIC: o.tr.Addr(), Gateway: true} })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = o.cl.Close() })
	return o
}

// expect returns the channel LP id arrives on when it comes back.
func (o *origin) expect(id lp.ID) <-chan *lp.Process {
	ch := make(chan *lp.Process, 1)
	o.mu.Lock()
	o.got[id] = ch
	o.mu.Unlock()
	return ch
}

// send starts an LP on node n; the returned channel gets it back finished.
func (o *origin) send(t *testing.T, n *Node, target, kind, input string) (*lp.Process, <-chan *lp.Process, error) {
	t.Helper()
	p := lp.New(o.name, target, kind, []byte(input))
	ch := o.expect(p.ID)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return p, ch, o.tr.Send(ctx, n.QUICAddr(), p)
}

func (o *origin) run(t *testing.T, n *Node, target, kind, input string) *lp.Process {
	t.Helper()
	_, ch, err := o.send(t, n, target, kind, input)
	if err != nil {
		t.Fatalf("send %s to %s: %v", target, n.Name(), err)
	}
	return wait(t, ch)
}

func wait(t *testing.T, ch <-chan *lp.Process) *lp.Process {
	t.Helper()
	select {
	case p := <-ch:
		return p
	case <-time.After(15 * time.Second):
		t.Fatal("timed out waiting for the LP to come back")
		return nil
	}
}

// waitHolders polls until n sees want fresh holders of each component.
func waitHolders(t *testing.T, n *Node, want map[string]int) {
	t.Helper()
	testutil.WaitFor(t, fmt.Sprintf("%s to see holders %v", n.Name(), want), func() bool {
		for c, k := range want {
			if len(n.cl.Holders(c)) != k {
				return false
			}
		}
		return true
	})
}

// Three nodes each hold one part of a nested call, so every step of the LP
// must migrate: r1 (relay) on n1 calls r2 (relay) on n2, which calls echo on
// n3; the replies unwind back through n2 and n1 and the LP returns to its
// origin. The step trace shows where each step ran.
func TestNestedCallAcrossThreeNodes(t *testing.T) {
	ca := testCA(t)
	n1 := startNode(t, ca, testConfig("n1"), map[string]string{"r1": "relay.wasm"})
	n2 := startNode(t, ca, testConfig("n2", n1.GossipAddr()), map[string]string{"r2": "relay.wasm"})
	n3 := startNode(t, ca, testConfig("n3", n1.GossipAddr()), map[string]string{"echo": "echo.wasm"})
	o := newOrigin(t, ca, "origin", n1.GossipAddr())
	waitHolders(t, n1, map[string]int{"r2": 1, "echo": 1})
	waitHolders(t, n2, map[string]int{"r1": 1, "echo": 1})
	testutil.WaitFor(t, "nodes to see the origin", func() bool {
		_, ok1 := n1.cl.Peer("origin")
		_, ok3 := n3.cl.Peer("origin")
		return ok1 && ok3
	})

	p := o.run(t, n1, "r1", "get", "r2/echo/hello")
	root := p.Root()
	if root.State != lp.StateDone || string(root.Output) != "hello" {
		t.Fatalf("root entry: state %s output %q (code %d %q)", root.State, root.Output, root.ErrCode, root.ErrMsg)
	}
	if got, want := strings.Join(traceNodes(p), " "), "n1 n2 n3 n2 n1"; got != want {
		t.Errorf("steps ran on %q, want %q", got, want)
	}
	if len(p.Entries) != 3 {
		t.Errorf("%d entries, want 3", len(p.Entries))
	}

	// Status shows the traffic and everyone's components. n1 counts its send
	// to the origin once the origin's acknowledgement is back, which may be
	// just after the origin has the LP.
	var st adminapi.Status
	testutil.WaitFor(t, "n1 to count its send to the origin", func() bool {
		st = getStatus(t, n1)
		return len(st.Members) > 0 && st.Members[0].SentTo["origin"] == 1
	})
	if len(st.Members) != 4 || !st.Members[0].Self || st.Members[0].Name != "n1" {
		t.Fatalf("status members: %+v", st.Members)
	}
	byName := map[string]adminapi.MemberStatus{}
	for _, m := range st.Members {
		byName[m.Name] = m
	}
	if c := byName["n3"].Components; len(c) != 1 || c[0].Name != "echo" {
		t.Errorf("status of n3 components: %+v", c)
	}
	if !byName["origin"].Gateway {
		t.Errorf("status does not mark the origin as a gateway: %+v", byName["origin"])
	}
	if st.Members[0].SentTo["n2"] != 1 || st.Members[0].SentTo["origin"] != 1 {
		t.Errorf("n1 sent_to = %v, want n2:1 origin:1", st.Members[0].SentTo)
	}
}

// A node refuses an LP whose active component it does not hold, and a call
// to a component no live node holds fails with CodeNoComponent, which the
// caller (relay) forwards to the root.
func TestRefusalsAndMissingComponents(t *testing.T) {
	ca := testCA(t)
	n1 := startNode(t, ca, testConfig("n1"), map[string]string{"relay": "relay.wasm"})
	o := newOrigin(t, ca, "origin", n1.GossipAddr())
	testutil.WaitFor(t, "n1 to see the origin", func() bool { _, ok := n1.cl.Peer("origin"); return ok })

	_, _, err := o.send(t, n1, "echo", "get", "x")
	var ref *transport.Refusal
	if !errors.As(err, &ref) || ref.Reason != transport.UnknownComponent {
		t.Fatalf("LP for a component n1 does not hold: %v, want an unknown-component refusal", err)
	}

	p := o.run(t, n1, "relay", "get", "nowhere/x")
	if root := p.Root(); root.State != lp.StateFailed || root.ErrCode != abi.CodeNoComponent {
		t.Fatalf("root entry: %s code %d %q, want failed with code %d", root.State, root.ErrCode, root.ErrMsg, abi.CodeNoComponent)
	}
}

// Shutdown hands queued LPs to another holder. n1 has one worker, busy with
// a step that spins until its 1 s deadline; the LPs queued behind it must
// finish on n2 once n1 shuts down, and the spinning one still comes back
// (failed with a timeout) because shutdown waits for running steps.
func TestShutdownHandsOffQueued(t *testing.T) {
	ca := testCA(t)
	c1 := testConfig("n1")
	c1.Workers = 1
	c1.Scheduler.OverloadMin = 1e9 // no push-out: only the shutdown moves LPs
	n1 := startNode(t, ca, c1, map[string]string{"loop": "loop.wasm", "echo": "echo.wasm"})
	n2 := startNode(t, ca, testConfig("n2", n1.GossipAddr()), map[string]string{"echo": "echo.wasm"})
	o := newOrigin(t, ca, "origin", n1.GossipAddr())
	waitHolders(t, n1, map[string]int{"echo": 1})
	testutil.WaitFor(t, "nodes to see the origin", func() bool {
		_, ok1 := n1.cl.Peer("origin")
		_, ok2 := n2.cl.Peer("origin")
		return ok1 && ok2
	})

	_, spin, err := o.send(t, n1, "loop", "get", "")
	if err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, "the spinning step to start", func() bool { return n1.run.running.Load() == 1 })
	var queued []<-chan *lp.Process
	for i := range 5 {
		_, ch, err := o.send(t, n1, "echo", "get", fmt.Sprint(i))
		if err != nil {
			t.Fatal(err)
		}
		queued = append(queued, ch)
	}
	if q := n1.run.q.len(); q != 5 {
		t.Fatalf("n1 queue = %d, want 5", q)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n1.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	for i, ch := range queued {
		p := wait(t, ch)
		if root := p.Root(); root.State != lp.StateDone || string(root.Output) != fmt.Sprint(i) {
			t.Errorf("queued LP %d: %s %q", i, root.State, root.Output)
		}
		if got := strings.Join(traceNodes(p), " "); got != "n2" {
			t.Errorf("queued LP %d ran on %q, want n2", i, got)
		}
	}
	p := wait(t, spin)
	if root := p.Root(); root.State != lp.StateFailed || root.ErrCode != abi.CodeTimeout {
		t.Errorf("spinning LP: %s code %d, want failed with timeout", root.State, root.ErrCode)
	}
	testutil.WaitFor(t, "n1 to leave n2's view", func() bool { _, ok := n2.cl.Peer("n1"); return !ok })
}

// A node started the way `tsubame node` starts one: TOML file, PEM files.
func TestNodeFromConfigFile(t *testing.T) {
	dir := t.TempDir()
	ca := testCA(t)
	if err := ca.Save(filepath.Join(dir, "certs")); err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, err := ca.Issue("filenode")
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{"certs/filenode.pem": certPEM, "certs/filenode-key.pem": keyPEM, "echo.wasm": module(t, "echo.wasm")} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	conf := `listen = "127.0.0.1:0"
gossip = "127.0.0.1:0"
admin = "127.0.0.1:0"
workers = 1
[components]
echo = "echo.wasm"
[tls]
ca = "certs/ca.pem"
cert = "certs/filenode.pem"
key = "certs/filenode-key.pem"
`
	path := filepath.Join(dir, "node.toml")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	n, err := New(context.Background(), c, Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Shutdown(context.Background())
	if n.Name() != "filenode" {
		t.Errorf("name %q, want the certificate's, filenode", n.Name())
	}
	if cs := n.Components(); len(cs) != 1 || cs[0].Name != "echo" {
		t.Errorf("components %+v", cs)
	}
	resp, err := http.Get("http://" + n.AdminAddr() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("/healthz: %s", resp.Status)
	}

	// A certificate for another name is refused.
	c.Name = "other"
	if _, err := New(context.Background(), c, Options{Logger: quiet}); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("node named differently from its certificate: %v", err)
	}
}

func getStatus(t *testing.T, n *Node) adminapi.Status {
	t.Helper()
	resp, err := http.Get("http://" + n.AdminAddr() + "/v1/status")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var st adminapi.Status
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatalf("status %s: %v", b, err)
	}
	return st
}

// The Go SDK chain chain-a -> chain-b -> chain-c, one component per node:
// the continuation chain-a saves before its call must survive two
// migrations and come back to it on n1.
func TestGoChainAcrossThreeNodes(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("compiles three Go guests: slow in -short and under -race")
	}
	ca := testCA(t)
	n1 := startNode(t, ca, testConfig("n1"), map[string]string{"chain-a": "chain-a.wasm"})
	n2 := startNode(t, ca, testConfig("n2", n1.GossipAddr()), map[string]string{"chain-b": "chain-b.wasm"})
	n3 := startNode(t, ca, testConfig("n3", n1.GossipAddr()), map[string]string{"chain-c": "chain-c.wasm"})
	o := newOrigin(t, ca, "origin", n1.GossipAddr())
	waitHolders(t, n1, map[string]int{"chain-b": 1, "chain-c": 1})
	waitHolders(t, n2, map[string]int{"chain-a": 1, "chain-c": 1})
	testutil.WaitFor(t, "n1 to see the origin", func() bool { _, ok := n1.cl.Peer("origin"); return ok })
	_ = n3

	want := engineRun(t, "run", "xyz")
	p := o.run(t, n1, "chain-a", "run", "xyz")
	root := p.Root()
	if root.State != lp.StateDone || string(root.Output) != want {
		t.Fatalf("root entry: %s %q (code %d %q), want %q", root.State, root.Output, root.ErrCode, root.ErrMsg, want)
	}
	// chain-b calls chain-c twice (sequential style): every step must have
	// run on the one node holding its entry's component.
	home := map[string]string{"chain-a": "n1", "chain-b": "n2", "chain-c": "n3"}
	if len(p.Trace) != 7 {
		t.Errorf("%d steps, want 7: %v", len(p.Trace), traceNodes(p))
	}
	for i, s := range p.Trace {
		if target := p.Entries[s.Entry].Target; s.Node != home[target] {
			t.Errorf("step %d (%s) ran on %s, want %s", i, target, s.Node, home[target])
		}
	}
}

// engineRun runs the chain in one engine, no cluster: the answer the cluster
// must give.
func engineRun(t *testing.T, kind, input string) string {
	t.Helper()
	ctx := context.Background()
	rt, err := wasmhost.New(ctx, wasmhost.NewConfig().WithCacheDir(cacheDir))
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close(ctx)
	eng := engine.New(rt, engine.Options{Node: "local", Logger: quiet})
	for _, c := range []string{"chain-a", "chain-b", "chain-c"} {
		m, err := rt.Load(ctx, module(t, c+".wasm"))
		if err != nil {
			t.Fatal(err)
		}
		eng.Install(c, m)
	}
	p := lp.New("local", "chain-a", kind, []byte(input))
	if err := eng.Run(ctx, p); err != nil {
		t.Fatal(err)
	}
	if p.Root().State != lp.StateDone {
		t.Fatalf("in-process chain failed: %d %q", p.Root().ErrCode, p.Root().ErrMsg)
	}
	return string(p.Root().Output)
}

// hangs makes the steps of one component wait for ctx to end before running,
// as a slow back end that honours cancellation would: the step then fails
// with "canceled" the moment its node stops.
type hangs struct {
	stepper
	component string
}

func (h hangs) Step(ctx context.Context, p *lp.Process) (lp.Step, error) {
	if e := p.ActiveEntry(); e != nil && e.Target == h.component {
		<-ctx.Done()
	}
	return h.stepper.Step(ctx, p)
}

// A node closed as a crash would (Close) while steps run drops their LPs:
// the steps it cancels must not come back to the origin failed with
// "canceled" (or anything else), which would turn the gateway's resend into
// an error answer.
func TestCloseDropsRunningLPs(t *testing.T) {
	ca := testCA(t)
	n1 := startNodeOpts(t, ca, testConfig("n1"), map[string]string{"hang": "echo.wasm", "loop": "loop.wasm", "echo": "echo.wasm"},
		func(o *Options) { o.wrap = func(s stepper) stepper { return hangs{s, "hang"} } })
	o := newOrigin(t, ca, "origin", n1.GossipAddr())
	testutil.WaitFor(t, "n1 to see the origin", func() bool { _, ok := n1.cl.Peer("origin"); return ok })
	// A warm connection back to the origin, with a pooled stream: nothing to
	// dial, so nothing but the stop itself keeps a failed LP from leaving.
	if p := o.run(t, n1, "echo", "get", "warm"); p.Root().State != lp.StateDone {
		t.Fatalf("warm-up LP: %s", p.Root().State)
	}
	var back []<-chan *lp.Process
	for _, c := range []string{"hang", "loop"} { // one per worker
		_, ch, err := o.send(t, n1, c, "get", "")
		if err != nil {
			t.Fatal(err)
		}
		back = append(back, ch)
	}
	testutil.WaitFor(t, "both steps to start", func() bool { return n1.run.running.Load() == 2 })
	_, ch, err := o.send(t, n1, "echo", "get", "queued")
	if err != nil {
		t.Fatal(err)
	}
	back = append(back, ch)
	n1.Close() // returns once its workers and transport are done
	for i, ch := range back {
		select {
		case p := <-ch:
			t.Errorf("LP %d came back from the closed node: %s code %d %q", i, p.Root().State, p.Root().ErrCode, p.Root().ErrMsg)
		default:
		}
	}
}
