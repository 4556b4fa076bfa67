package node

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
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
	"github.com/tsubame-rt/tsubame/node/install"
)

const testToken = "0123456789abcdef0123456789abcdef"

// hotConfig is testConfig with its own data directory (the store and the
// manifest must not be shared between nodes), an admin token and a short
// keep_old.
func hotConfig(t testing.TB, name string, seeds ...string) Config {
	t.Helper()
	c := testConfig(name, seeds...)
	c.DataDir = t.TempDir()
	c.AdminTokenFile = filepath.Join(c.DataDir, "token")
	if err := os.WriteFile(c.AdminTokenFile, []byte(testToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c.Modules.KeepOld = time.Second
	return c
}

// adminClient speaks HTTPS to a node's admin API, trusting the cluster CA.
type adminClient struct {
	base  string
	http  *http.Client
	token string
}

func newAdminClient(t testing.TB, ca *pki.CA, n *Node) *adminClient {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca.CertPEM())
	return &adminClient{
		base:  "https://" + n.AdminAddr(),
		http:  &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}},
		token: testToken,
	}
}

// do sends a request and returns the status and body.
func (a *adminClient) do(t testing.TB, method, path string, body []byte) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, a.base+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if a.token != "" {
		req.Header.Set("Authorization", "Bearer "+a.token)
	}
	resp, err := a.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// install uploads file as component name and fails the test unless every
// target succeeded.
func (a *adminClient) install(t testing.TB, name, file, query string) adminapi.InstallResponse {
	t.Helper()
	code, body := a.do(t, http.MethodPut, "/v1/components/"+name+query, module(t, file))
	var res adminapi.InstallResponse
	if err := json.Unmarshal(body, &res); code != http.StatusOK || err != nil {
		t.Fatalf("install %s from %s%s: %d %s", name, file, query, code, body)
	}
	return res
}

func (a *adminClient) list(t testing.TB, query string) adminapi.ComponentsList {
	t.Helper()
	code, body := a.do(t, http.MethodGet, "/v1/components"+query, nil)
	var l adminapi.ComponentsList
	if err := json.Unmarshal(body, &l); code != http.StatusOK || err != nil {
		t.Fatalf("list: %d %s", code, body)
	}
	return l
}

func holds(n *Node, component string) bool { return n.eng.Holds(component) }

// The admin API end to end: authentication, validation that leaves the node
// exactly as it was, an upload served at once, spreading to a peer over
// QUIC, the component list, removal, and a restart that keeps what was
// installed.
func TestAdminInstall(t *testing.T) {
	ca := testCA(t)
	c1 := hotConfig(t, "n1")
	c1.Modules.MaxBytes = 64 << 10
	n1 := startNode(t, ca, c1, nil)
	n2 := startNode(t, ca, hotConfig(t, "n2", n1.GossipAddr()), nil)
	o := newOrigin(t, ca, "origin", n1.GossipAddr())
	testutil.WaitFor(t, "n1 and n2 to see each other and the origin", func() bool {
		_, ok1 := n1.cl.Peer("n2")
		_, ok2 := n1.cl.Peer("origin")
		_, ok3 := n2.cl.Peer("origin")
		return ok1 && ok2 && ok3
	})
	a := newAdminClient(t, ca, n1)

	t.Run("auth", func(t *testing.T) {
		for _, tc := range []struct {
			token string
			code  int
			want  string
		}{
			{"", http.StatusUnauthorized, "missing bearer token"},
			{"not-the-token-at-all-0123456789", http.StatusUnauthorized, "wrong bearer token"},
		} {
			b := *a
			b.token = tc.token
			code, body := b.do(t, http.MethodPut, "/v1/components/fresh", module(t, "echo.wasm"))
			if code != tc.code || !strings.Contains(string(body), tc.want) {
				t.Errorf("token %q: %d %s, want %d %q", tc.token, code, body, tc.code, tc.want)
			}
			if code, _ := b.do(t, http.MethodGet, "/v1/components", nil); code != tc.code {
				t.Errorf("token %q: list answered %d, want %d", tc.token, code, tc.code)
			}
		}
		// Plain HTTP reaches health and status, never the module endpoints.
		for path, want := range map[string]int{"/healthz": 200, "/v1/status": 200, "/v1/components": 403} {
			resp, err := http.Get("http://" + n1.AdminAddr() + path)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != want {
				t.Errorf("plain GET %s: %s, want %d", path, resp.Status, want)
			}
		}
		if holds(n1, "fresh") {
			t.Fatal("a refused request installed something")
		}
	})

	t.Run("validation", func(t *testing.T) {
		before, _ := n1.hot.Store().List()
		for _, tc := range []struct {
			name string
			wasm []byte
			code int
			rule string
			want string
		}{
			{"not wasm", []byte("#!/bin/sh\necho hello\n"), 422, "compile", "not a WebAssembly module"},
			{"forbidden import", module(t, "badimport.wasm"), 422, "imports", "is not allowed"},
			{"missing export", module(t, "noexport.wasm"), 422, "exports", "tsubame_step"},
			{"wrong abi version", module(t, "badversion.wasm"), 422, "abi version", "version"},
			{"over the size limit", append(module(t, "echo.wasm"), make([]byte, 64<<10)...), 413, "size", "exceeds modules.max_bytes"},
		} {
			code, body := a.do(t, http.MethodPut, "/v1/components/bad", tc.wasm)
			var e adminapi.Error
			_ = json.Unmarshal(body, &e)
			if code != tc.code || e.Rule != tc.rule || !strings.Contains(e.Error, tc.want) {
				t.Errorf("%s: %d %s, want %d rule %q mentioning %q", tc.name, code, body, tc.code, tc.rule, tc.want)
			}
		}
		after, _ := n1.hot.Store().List()
		if holds(n1, "bad") || len(after) != len(before) || len(n1.Components()) != 0 {
			t.Fatalf("refused modules changed the node: holds bad %v, store %d -> %d, components %v",
				holds(n1, "bad"), len(before), len(after), n1.Components())
		}
	})

	t.Run("upload and serve", func(t *testing.T) {
		res := a.install(t, "fresh", "echo.wasm", "")
		if len(res.Results) != 1 || res.Results[0].Node != "n1" || !res.Results[0].OK {
			t.Fatalf("results %+v", res.Results)
		}
		if want := lp.Hash(sha256.Sum256(module(t, "echo.wasm"))).String(); res.Hash != want {
			t.Errorf("hash %s, want %s", res.Hash, want)
		}
		// Membership carries the change: n2 routes to n1 without a restart.
		waitHolders(t, n2, map[string]int{"fresh": 1})
		p := o.run(t, n1, "fresh", "get", "hi")
		if root := p.Root(); root.State != lp.StateDone || string(root.Output) != "hi" {
			t.Fatalf("fresh: %s %q %q", root.State, root.Output, root.ErrMsg)
		}
	})

	t.Run("spread to a peer", func(t *testing.T) {
		res := a.install(t, "fresh", "echo.wasm", "?nodes=n2")
		if len(res.Results) != 1 || res.Results[0].Node != "n2" || res.Results[0].FetchedFrom != "n1" {
			t.Fatalf("results %+v, want n2 to fetch the module from n1", res.Results)
		}
		if !holds(n2, "fresh") || !n2.hot.Store().Has(lp.Hash(sha256.Sum256(module(t, "echo.wasm")))) {
			t.Fatal("n2 does not hold fresh, or did not keep its module")
		}
		p := o.run(t, n2, "fresh", "shout", "x")
		if root := p.Root(); root.State != lp.StateDone {
			t.Fatalf("fresh on n2: %s %q", root.State, root.ErrMsg)
		}
		code, body := a.do(t, http.MethodPut, "/v1/components/fresh?nodes=nobody", module(t, "echo.wasm"))
		if code != http.StatusBadRequest || !strings.Contains(string(body), `no live member is named \"nobody\"`) {
			t.Errorf("unknown node: %d %s", code, body)
		}
	})

	t.Run("list", func(t *testing.T) {
		l := a.list(t, "?all=1")
		if len(l.Nodes) != 2 || l.Nodes[0].Node != "n1" || l.Nodes[1].Node != "n2" || len(l.Errors) != 0 {
			t.Fatalf("list: %+v", l)
		}
		c := l.Nodes[1].Components
		if len(c) != 1 || c[0].Name != "fresh" || c[0].Source != "peer" || c[0].Size != len(module(t, "echo.wasm")) ||
			c[0].Kinds["shout"] != 1 || c[0].Steps != 1 || c[0].InstalledAt == nil {
			t.Errorf("n2's components: %+v", c)
		}
		if c := l.Nodes[0].Components; len(c) != 1 || c[0].Source != "upload" || c[0].Kinds["get"] != 1 {
			t.Errorf("n1's components: %+v", c)
		}
	})

	t.Run("remove", func(t *testing.T) {
		code, body := a.do(t, http.MethodDelete, "/v1/components/fresh?nodes=n2", nil)
		if code != http.StatusOK || holds(n2, "fresh") || !holds(n1, "fresh") {
			t.Fatalf("remove on n2: %d %s", code, body)
		}
		code, body = a.do(t, http.MethodDelete, "/v1/components/absent", nil)
		if code != http.StatusNotFound || !strings.Contains(string(body), `"absent": true`) {
			t.Errorf("remove of a component nobody holds: %d %s", code, body)
		}
		// --all where a node lacks it: gone everywhere is the goal, met.
		a.install(t, "once", "echo.wasm", "?nodes=n1")
		code, body = a.do(t, http.MethodDelete, "/v1/components/once?all=1", nil)
		var res adminapi.InstallResponse
		if err := json.Unmarshal(body, &res); code != http.StatusOK || err != nil || len(res.Results) != 2 || holds(n1, "once") {
			t.Fatalf("remove --all held by one node: %d %s", code, body)
		}
		for _, r := range res.Results {
			if !r.OK || r.Absent != (r.Node == "n2") || r.Removed != (r.Node == "n1") {
				t.Errorf("remove --all: %+v", r)
			}
		}
		waitHolders(t, n1, map[string]int{"fresh": 0})
	})

	t.Run("restart keeps it", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := n1.Shutdown(ctx); err != nil {
			t.Fatal(err)
		}
		c := c1
		c.Seeds = []string{n2.GossipAddr()}
		again := startNode(t, ca, c, nil)
		if !holds(again, "fresh") {
			t.Fatalf("the restarted node holds %v, want fresh", again.Components())
		}
		l := newAdminClient(t, ca, again).list(t, "")
		if c := l.Nodes[0].Components; len(c) != 1 || c[0].Source != "upload" || c[0].InstalledAt == nil {
			t.Errorf("after the restart: %+v", c)
		}
	})
}

// A node without admin_token_file keeps the module endpoints off, and with
// admin_plain off answers nothing over plain HTTP.
func TestAdminWithoutToken(t *testing.T) {
	ca := testCA(t)
	c := testConfig("n1")
	c.DataDir = t.TempDir()
	c.AdminPlain = false
	n := startNode(t, ca, c, nil)
	a := newAdminClient(t, ca, n)
	code, body := a.do(t, http.MethodPut, "/v1/components/x", module(t, "echo.wasm"))
	if code != http.StatusForbidden || !strings.Contains(string(body), "no admin_token_file") {
		t.Errorf("install without a configured token: %d %s", code, body)
	}
	if code, _ := a.do(t, http.MethodGet, "/v1/status", nil); code != http.StatusOK {
		t.Errorf("status over HTTPS: %d", code)
	}
	resp, err := http.Get("http://" + n.AdminAddr() + "/v1/status")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("plain status with admin_plain off: %s", resp.Status)
	}
}

// liar is a member that answers every module request with other bytes than
// asked for, and sends install orders naming itself as the source.
func newLiar(t *testing.T, ca *pki.CA, seed string) (*transport.Transport, *cluster.Cluster) {
	t.Helper()
	tlsConf, err := ca.IssueTLS("liar")
	if err != nil {
		t.Fatal(err)
	}
	tr, err := transport.Listen(context.Background(), transport.Config{
		Listen: "127.0.0.1:0", TLS: tlsConf, Logger: quiet,
		Requests: transport.RequestHandlerFunc(func(ctx context.Context, from string, kind transport.RequestKind, body []byte) ([]byte, error) {
			return module(t, "loop.wasm"), nil
		}),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	cl, err := cluster.Join(context.Background(), cluster.Config{Name: "liar", Bind: "127.0.0.1:0", Seeds: []string{seed}, Logger: quiet},
		func() cluster.Meta { return cluster.Meta{QUIC: tr.Addr()} })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	return tr, cl
}

// A peer that sends bytes that do not hash to what was asked for is
// refused, with an error that says so, and nothing is installed or kept.
func TestLyingPeerRefused(t *testing.T) {
	ca := testCA(t)
	n := startNode(t, ca, hotConfig(t, "n1"), nil)
	tr, _ := newLiar(t, ca, n.GossipAddr())
	testutil.WaitFor(t, "n1 to see the liar", func() bool { _, ok := n.cl.Peer("liar"); return ok })
	want := lp.Hash(sha256.Sum256(module(t, "echo.wasm")))
	order, _ := json.Marshal(install.Order{Name: "echo", Hash: want.String()})
	_, err := tr.Request(context.Background(), n.QUICAddr(), transport.RequestInstall, order, 1<<20)
	var re *transport.RequestError
	if !errors.As(err, &re) || re.Status != transport.StatusFailed || !strings.Contains(re.Msg, "liar: sent") ||
		!strings.Contains(re.Msg, "hash mismatch") {
		t.Fatalf("install from a lying peer: %v, want a failure naming the liar and the hash mismatch", err)
	}
	stored, _ := n.hot.Store().List()
	if holds(n, "echo") || n.rt.Module(lp.Hash(sha256.Sum256(module(t, "loop.wasm")))) != nil || len(stored) != 0 {
		t.Fatalf("the lie left traces: holds echo %v, stored %v", holds(n, "echo"), stored)
	}
}

// sleepy makes the steps of one component take d (a sleeping step: the
// worker is busy, the CPU is not), as a slow back end would.
type sleepy struct {
	stepper
	component string
	d         time.Duration
}

func (s sleepy) Step(ctx context.Context, p *lp.Process) (lp.Step, error) {
	if e := p.ActiveEntry(); e != nil && e.Target == s.component {
		time.Sleep(s.d)
	}
	return s.stepper.Step(ctx, p)
}

func slowOpt(component string, d time.Duration) func(*Options) {
	return func(o *Options) { o.wrap = func(s stepper) stepper { return sleepy{s, component, d} } }
}

// Installing a new version while LPs are suspended in the old one: every LP
// that started on v1 resumes and finishes on v1, every LP started after the
// swap runs v2, nothing fails; a node that holds the component but not the
// version an entry needs fetches it from a peer; and an entry whose version
// nobody has any more fails with code 11.
func TestVersionSwapWithSuspendedLPs(t *testing.T) {
	ca := testCA(t)
	n1 := startNode(t, ca, hotConfig(t, "n1"), map[string]string{"swap": "swap_v1.wasm"})
	n2 := startNodeOpts(t, ca, hotConfig(t, "n2", n1.GossipAddr()), map[string]string{"slow": "echo.wasm"}, slowOpt("slow", 300*time.Millisecond))
	n3 := startNode(t, ca, hotConfig(t, "n3", n1.GossipAddr()), nil)
	o := newOrigin(t, ca, "origin", n1.GossipAddr())
	waitHolders(t, n1, map[string]int{"slow": 1})
	waitHolders(t, n2, map[string]int{"swap": 1})
	testutil.WaitFor(t, "everyone to see everyone", func() bool {
		_, a := n1.cl.Peer("origin")
		_, b := n2.cl.Peer("origin")
		_, c := n3.cl.Peer("n1")
		return a && b && c
	})
	v1 := lp.Hash(sha256.Sum256(module(t, "swap_v1.wasm")))
	v2 := lp.Hash(sha256.Sum256(module(t, "swap_v2.wasm")))
	a1 := newAdminClient(t, ca, n1)

	// batch sends k LPs to node n and waits until each has made its call,
	// so all of them are suspended in the version n runs now.
	batch := func(n *Node, tag string, k int) []<-chan *lp.Process {
		before := n.hot.Steps("swap")
		var chs []<-chan *lp.Process
		for i := range k {
			_, ch, err := o.send(t, n, "swap", "run", fmt.Sprintf("%s%d", tag, i))
			if err != nil {
				t.Fatal(err)
			}
			chs = append(chs, ch)
		}
		testutil.WaitFor(t, "the batch's calls", func() bool { return n.hot.Steps("swap") >= before+uint64(k) })
		return chs
	}
	check := func(chs []<-chan *lp.Process, tag, want string, module lp.Hash) {
		t.Helper()
		for i, ch := range chs {
			p := wait(t, ch)
			root := p.Root()
			if exp := fmt.Sprintf("%s:%s%d", want, tag, i); root.State != lp.StateDone || string(root.Output) != exp {
				t.Errorf("LP %s%d: %s %q (code %d %q), want %q", tag, i, root.State, root.Output, root.ErrCode, root.ErrMsg, exp)
			}
			if root.Module != module {
				t.Errorf("LP %s%d: root entry last ran module %s, want %s", tag, i, root.Module.Short(), module.Short())
			}
		}
	}

	// v1 LPs are suspended on n2 when v2 replaces v1 on n1.
	old := batch(n1, "a", 6)
	res := a1.install(t, "swap", "swap_v2.wasm", "")
	if res.Hash != v2.String() {
		t.Fatalf("installed %s, want v2 %s", res.Hash, v2.Short())
	}
	if l := a1.list(t, ""); len(l.Nodes[0].Retained) != 1 || l.Nodes[0].Retained[0].Hash != v1.String() {
		t.Errorf("retained versions after the swap: %+v, want v1", l.Nodes[0].Retained)
	}
	fresh := batch(n1, "b", 6)
	check(old, "a", "v1->v1", v1)
	check(fresh, "b", "v2->v2", v2)

	// Suspended in v2 on n1; then n3 becomes the only holder, running v1.
	// The v2 entries resume on n3, which fetches v2 from n1.
	mid := batch(n1, "c", 4)
	a1.install(t, "swap", "swap_v1.wasm", "?nodes=n3")
	if code, body := a1.do(t, http.MethodDelete, "/v1/components/swap", nil); code != http.StatusOK {
		t.Fatalf("remove swap from n1: %d %s", code, body)
	}
	check(mid, "c", "v2->v2", v2)
	if n3.rt.Module(v2) == nil {
		t.Error("n3 ran v2 entries without loading v2")
	}

	// A continuation saved by a version nobody has fails with code 11.
	p := lp.New(o.name, "swap", "run", []byte("x"))
	if err := p.Call("slow", "get", []byte("x"), []byte("v9"), lp.DefaultLimits); err != nil {
		t.Fatal(err)
	}
	if err := p.Reply([]byte("x")); err != nil {
		t.Fatal(err)
	}
	p.Entries[0].Module, p.Entries[0].Steps = lp.Hash{9, 9, 9}, 1
	ch := o.expect(p.ID)
	if err := o.tr.Send(context.Background(), n3.QUICAddr(), p); err != nil {
		t.Fatal(err)
	}
	if root := wait(t, ch).Root(); root.State != lp.StateFailed || root.ErrCode != abi.CodeVersionGone ||
		!strings.Contains(root.ErrMsg, "is gone") {
		t.Errorf("entry of a vanished version: %s code %d %q, want code %d", root.State, root.ErrCode, root.ErrMsg, abi.CodeVersionGone)
	}

	// Once keep_old has passed with nothing suspended in it, n1 drops v1
	// from its runtime and its store.
	testutil.WaitFor(t, "n1 to drop v1", func() bool { return n1.rt.Module(v1) == nil && !n1.hot.Store().Has(v1) })
}

// Under sustained load on the one node holding a slow component, auto-grow
// installs it on the two idle nodes, one decision at a time, and they take a
// share of the load; once the load is gone the auto-installed copies are
// removed again.
func TestAutogrow(t *testing.T) {
	if testing.Short() {
		t.Skip("runs load for a few seconds")
	}
	ca := testCA(t)
	grow := func(c Config) Config {
		c.Autogrow = AutogrowConfig{Enabled: true, High: 1.0, Low: 0.5, Sustain: time.Second,
			Cooldown: 500 * time.Millisecond, MaxPerMinute: 6, IdleRemove: time.Second}
		return c
	}
	const step = 20 * time.Millisecond
	n1 := startNodeOpts(t, ca, grow(hotConfig(t, "n1")), map[string]string{"slow": "echo.wasm"}, slowOpt("slow", step))
	n2 := startNodeOpts(t, ca, grow(hotConfig(t, "n2", n1.GossipAddr())), nil, slowOpt("slow", step))
	n3 := startNodeOpts(t, ca, grow(hotConfig(t, "n3", n1.GossipAddr())), nil, slowOpt("slow", step))
	o := newOrigin(t, ca, "origin", n1.GossipAddr())
	nodes := map[string]*Node{"n1": n1, "n2": n2, "n3": n3}
	testutil.WaitFor(t, "everyone to see everyone", func() bool {
		return len(n1.cl.Peers()) == 3 && len(n2.cl.Peers()) == 3 && len(n3.cl.Peers()) == 3 && len(o.cl.Holders("slow")) == 1
	})

	ld := startLoad(t, o, "slow", 16)
	start := time.Now()
	testutil.WaitFor(t, "slow to be auto-installed on n2 and n3", func() bool { return holds(n2, "slow") && holds(n3, "slow") })
	grown := time.Now()
	var firstGrow time.Time
	for _, ev := range n1.grow.History() {
		if ev.Action == "install" && ev.Error == "" && (firstGrow.IsZero() || ev.At.Before(firstGrow)) {
			firstGrow = ev.At
		}
	}
	if firstGrow.IsZero() {
		t.Fatalf("n1 recorded no auto-install: %+v", n1.grow.History())
	}
	// What the grow is for: the new holders take a share of the load. (How
	// much throughput rises is BenchmarkAutogrow's to measure, not a test's
	// to bound: this machine's load decides it.)
	testutil.WaitFor(t, "n2 and n3 to serve a share of the load", func() bool {
		return ld.servedBy("n2") >= 20 && ld.servedBy("n3") >= 20
	})
	st := n1.Status()
	ld.stop()
	t.Logf("auto-grow: first install %v after the load started, both idle nodes %v; served by n1 %d, n2 %d, n3 %d",
		firstGrow.Sub(start).Round(time.Millisecond), grown.Sub(start).Round(time.Millisecond),
		ld.servedBy("n1"), ld.servedBy("n2"), ld.servedBy("n3"))
	if len(ld.failed) > 0 {
		t.Errorf("%d LPs failed, first: %s", len(ld.failed), ld.failed[0])
	}
	// One decision per component at a time: no stampede of installs.
	var installs []string
	for _, n := range nodes {
		for _, ev := range n.grow.History() {
			if ev.Action == "install" {
				installs = append(installs, ev.Node)
			}
		}
	}
	if len(installs) != 2 {
		t.Errorf("auto-installs decided: %v, want exactly one on n2 and one on n3", installs)
	}
	autos := map[string]bool{}
	for _, m := range st.Members {
		for _, c := range m.Components {
			if c.Name == "slow" && c.Auto && c.InstalledAt != nil {
				autos[m.Name] = true
			}
		}
	}
	if !autos["n2"] || !autos["n3"] || autos["n1"] {
		t.Errorf("status shows slow auto-installed on %v, want n2 and n3", autos)
	}

	// The load is gone: the auto-installed copies go, the original stays.
	testutil.WaitFor(t, "the idle auto-installed copies to be removed", func() bool { return !holds(n2, "slow") && !holds(n3, "slow") })
	if !holds(n1, "slow") {
		t.Error("n1 lost the component it was configured with")
	}
}

// load is closed-loop load from an origin: clients that each send an LP to
// a holder of component the origin sees (round robin, as a gateway would),
// wait for it to come back, and send the next.
type load struct {
	mu     sync.Mutex
	doneAt []time.Time
	byNode map[string]int // node that ran the last step
	failed []string
	quit   chan struct{}
	wg     sync.WaitGroup
}

func startLoad(t testing.TB, o *origin, component string, clients int) *load {
	l := &load{byNode: map[string]int{}, quit: make(chan struct{})}
	for c := range clients {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for i := 0; ; i++ {
				select {
				case <-l.quit:
					return
				default:
				}
				hs := o.cl.Holders(component)
				if len(hs) == 0 {
					time.Sleep(time.Millisecond)
					continue
				}
				h := hs[(c+i)%len(hs)]
				p := lp.New(o.name, component, "get", []byte("x"))
				ch := o.expect(p.ID)
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				err := o.tr.Send(ctx, h.Meta.QUIC, p)
				cancel()
				if err != nil {
					continue // refused (queue full) or a holder going away: try again
				}
				var got *lp.Process
				select {
				case got = <-ch:
				case <-time.After(10 * time.Second):
					l.mu.Lock()
					l.failed = append(l.failed, "an LP never came back")
					l.mu.Unlock()
					return
				}
				l.mu.Lock()
				if got.Root().State != lp.StateDone {
					l.failed = append(l.failed, fmt.Sprintf("%d %s", got.Root().ErrCode, got.Root().ErrMsg))
				} else {
					l.doneAt = append(l.doneAt, time.Now())
					l.byNode[got.Trace[len(got.Trace)-1].Node]++
				}
				l.mu.Unlock()
			}
		}()
	}
	return l
}

func (l *load) stop() {
	close(l.quit)
	l.wg.Wait()
}

// rate is LPs finished per second between from and to.
func (l *load) rate(from, to time.Time) float64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, at := range l.doneAt {
		if at.After(from) && !at.After(to) {
			n++
		}
	}
	return float64(n) / to.Sub(from).Seconds()
}

// servedBy is how many LPs finished with their last step on node.
func (l *load) servedBy(node string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.byNode[node]
}

// Removing a component from every node while LPs are suspended in it: the
// suspended entries still resume, in the version that saved them, on the
// node where their call returns (it fetches the version from the node that
// keeps it); new LPs find no holder.
func TestRemoveAllWithSuspendedLPs(t *testing.T) {
	ca := testCA(t)
	n1 := startNode(t, ca, hotConfig(t, "n1"), map[string]string{"swap": "swap_v1.wasm"})
	n2 := startNodeOpts(t, ca, hotConfig(t, "n2", n1.GossipAddr()), map[string]string{"slow": "echo.wasm"}, slowOpt("slow", 500*time.Millisecond))
	o := newOrigin(t, ca, "origin", n1.GossipAddr())
	waitHolders(t, n1, map[string]int{"slow": 1})
	waitHolders(t, n2, map[string]int{"swap": 1})
	testutil.WaitFor(t, "everyone to see the origin", func() bool {
		_, a := n1.cl.Peer("origin")
		_, b := n2.cl.Peer("origin")
		return a && b
	})
	v1 := lp.Hash(sha256.Sum256(module(t, "swap_v1.wasm")))
	var chs []<-chan *lp.Process
	for i := range 4 {
		_, ch, err := o.send(t, n1, "swap", "run", fmt.Sprintf("r%d", i))
		if err != nil {
			t.Fatal(err)
		}
		chs = append(chs, ch)
	}
	testutil.WaitFor(t, "the calls", func() bool { return n1.hot.Steps("swap") >= 4 })
	code, body := newAdminClient(t, ca, n1).do(t, http.MethodDelete, "/v1/components/swap?all=1", nil)
	if code != http.StatusOK || holds(n1, "swap") {
		t.Fatalf("remove --all: %d %s", code, body)
	}
	for i, ch := range chs {
		p := wait(t, ch)
		if root := p.Root(); root.State != lp.StateDone || string(root.Output) != fmt.Sprintf("v1->v1:r%d", i) || root.Module != v1 {
			t.Errorf("LP r%d: %s %q (code %d %q), module %s", i, root.State, root.Output, root.ErrCode, root.ErrMsg, root.Module.Short())
		}
	}
}
