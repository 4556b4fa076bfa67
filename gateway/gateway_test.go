package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tsubame-rt/tsubame/abi"
	"github.com/tsubame-rt/tsubame/internal/mesh/cluster"
	"github.com/tsubame-rt/tsubame/internal/mesh/sched"
	"github.com/tsubame-rt/tsubame/internal/testutil"
	"github.com/tsubame-rt/tsubame/lp"
)

// fakeNet is an in-memory cluster: every holder of a component is a node
// whose behaviour the test sets. Send copies the LP (as the wire would) and
// hands it to the node's handle function, which acknowledges (nil) or
// refuses (error) and may answer later through the gateway's accept.
type fakeNet struct {
	mu      sync.Mutex
	g       *Gateway
	byComp  map[string][]cluster.Peer // component -> holders
	handle  func(node string, p *lp.Process) error
	sent    []string // "node/attempt" of every acknowledged send
	refused int
	silent  string // a node that never answers a send, as a dead one
	// stale holds live holders whose reports are too old to schedule on;
	// freshAfter > 0 moves them to byComp on that call of holders.
	stale      map[string][]cluster.Peer
	freshAfter int
	lookups    int // calls of holders
}

func (f *fakeNet) Holders(component string) []cluster.Peer {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.lookups++; f.lookups == f.freshAfter {
		for c, hs := range f.stale {
			f.byComp[c] = append(f.byComp[c], hs...)
		}
		f.stale = nil
	}
	return slices.Clone(f.byComp[component])
}

// Members are the holders, fresh or stale, each listing the components it
// holds.
func (f *fakeNet) Members() []cluster.Peer {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []cluster.Peer
	for _, m := range []map[string][]cluster.Peer{f.byComp, f.stale} {
		for comp, hs := range m {
			for _, h := range hs {
				h.Meta.Components = []cluster.Component{{Name: comp}}
				out = append(out, h)
			}
		}
	}
	return out
}

func (f *fakeNet) holderLookups() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.lookups
}

// Peers are the fresh holders, once each.
func (f *fakeNet) Peers() []cluster.Peer {
	f.mu.Lock()
	defer f.mu.Unlock()
	seen := map[string]bool{}
	var out []cluster.Peer
	for _, cs := range f.byComp {
		for _, c := range cs {
			if !seen[c.Name] {
				seen[c.Name] = true
				out = append(out, c)
			}
		}
	}
	return out
}

func (f *fakeNet) Send(ctx context.Context, addr string, p *lp.Process) error {
	node := strings.TrimPrefix(addr, "addr-")
	if node == f.silent {
		<-ctx.Done()
		return ctx.Err()
	}
	err := f.handle(node, clone(p))
	f.mu.Lock()
	defer f.mu.Unlock()
	if err != nil {
		f.refused++
		return err
	}
	f.sent = append(f.sent, fmt.Sprintf("%s/%d", node, p.Attempt))
	return nil
}

func (f *fakeNet) sends() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.sent)
}

// clone deep-copies p, as an encode and decode would.
func clone(p *lp.Process) *lp.Process {
	q := *p
	q.Entries = slices.Clone(p.Entries)
	for i := range q.Entries {
		q.Entries[i].Input = slices.Clone(q.Entries[i].Input)
	}
	q.Trace = slices.Clone(p.Trace)
	return &q
}

// greet is the fake component: it replies "Hello, INPUT!" on node.
func greet(node string, p *lp.Process) *lp.Process {
	in := string(p.Entries[0].Input)
	if err := p.Reply([]byte("Hello, " + in + "!")); err != nil {
		panic(err)
	}
	p.Record(lp.Step{Node: node, Entry: 0, Outcome: lp.OutcomeReply}, 16)
	return p
}

func holder(name string) cluster.Peer {
	return cluster.Peer{Name: name, Meta: cluster.Meta{QUIC: "addr-" + name}}
}

// firstPolicy picks the first holder, so tests know where an LP goes.
type firstPolicy struct{}

func (firstPolicy) Pick(c []sched.Candidate) int {
	if len(c) == 0 {
		return -1
	}
	return 0
}

var first sched.Policy = firstPolicy{}

var helloRoute = Route{Method: "GET", Path: "/hello", Component: "hello", Kind: "hello", Input: "query:name"}

func testSettings() settings {
	return settings{attempts: 3, attemptTimeout: 5 * time.Second, maxInFlight: 64, maxBody: 1024, limits: lp.DefaultLimits}
}

// newTest starts a gateway core over f behind an httptest server.
func newTest(t *testing.T, f *fakeNet, set settings, routes ...Route) (*Gateway, string) {
	t.Helper()
	if len(routes) == 0 {
		routes = []Route{helloRoute}
	}
	g, err := newCore("gw", set, routes, f, f, first, nil)
	if err != nil {
		t.Fatal(err)
	}
	f.g = g
	srv := httptest.NewServer(g.Handler())
	t.Cleanup(srv.Close)
	return g, srv.URL
}

// answer acknowledges and replies from another goroutine, as a node would.
func answer(f *fakeNet) func(string, *lp.Process) error {
	return func(node string, p *lp.Process) error {
		go func() {
			if err := f.g.accept(node, greet(node, p)); err != nil {
				panic(err)
			}
		}()
		return nil
	}
}

func get(t *testing.T, url string) (int, http.Header, string) {
	t.Helper()
	res, body := getWith(t, http.DefaultClient, url)
	return res.StatusCode, res.Header, body
}

// getWith GETs url with client and returns the response with its body read.
func getWith(t *testing.T, client *http.Client, url string) (*http.Response, string) {
	t.Helper()
	res, err := client.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res, string(b)
}

func TestHello(t *testing.T) {
	f := newFake("hello", "n1")
	g, url := newTest(t, f, testSettings())
	code, h, body := get(t, url+"/hello?name=world")
	if code != 200 || body != "Hello, world!" {
		t.Fatalf("got %d %q, want 200 %q", code, body, "Hello, world!")
	}
	if ct := h.Get("Content-Type"); ct != defaultContentType {
		t.Errorf("Content-Type %q, want %q", ct, defaultContentType)
	}
	if h.Get("Tsubame-Trace") != "" {
		t.Errorf("trace exposed without expose_trace: %q", h.Get("Tsubame-Trace"))
	}
	if got := f.sends(); !slices.Equal(got, []string{"n1/0"}) {
		t.Errorf("sends %v, want [n1/0]", got)
	}
	if n := g.stats.replies.Load(); n != 1 {
		t.Errorf("replies = %d, want 1", n)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.waiting) != 0 {
		t.Errorf("state left behind: %d waiting", len(g.waiting))
	}
}

func TestExposeTrace(t *testing.T) {
	f := newFake("hello", "n1")
	set := testSettings()
	set.exposeTrace = true
	_, url := newTest(t, f, set)
	_, h, _ := get(t, url+"/hello?name=x")
	if tr := h.Get("Tsubame-Trace"); tr != "n1" {
		t.Errorf("Tsubame-Trace %q, want n1", tr)
	}
}

// A lost LP (acknowledged, never returned) is resent as attempt 1 with the
// same ID and a fresh root entry; the reply to attempt 1 answers.
func TestResendAfterLoss(t *testing.T) {
	f := newFake("hello", "n1")
	var ids []lp.ID
	var mu sync.Mutex
	f.handle = func(node string, p *lp.Process) error {
		mu.Lock()
		ids = append(ids, p.ID)
		mu.Unlock()
		if p.Attempt == 0 {
			return nil // lost with its node
		}
		if e := p.Entries[0]; len(p.Entries) != 1 || e.State != lp.StateReady || string(e.Input) != "w" || p.Active != 0 {
			panic(fmt.Sprintf("attempt %d is not a fresh root entry: %+v", p.Attempt, p))
		}
		return answer(f)(node, p)
	}
	set := testSettings()
	set.attemptTimeout = 50 * time.Millisecond
	g, url := newTest(t, f, set)
	code, h, body := get(t, url+"/hello?name=w")
	if code != 200 || body != "Hello, w!" || h.Get("Tsubame-Attempt") != "1" {
		t.Fatalf("got %d %q attempt %q, want 200 %q attempt 1", code, body, h.Get("Tsubame-Attempt"), "Hello, w!")
	}
	if len(ids) != 2 || ids[0] != ids[1] {
		t.Errorf("attempts carried IDs %v, want the same ID twice", ids)
	}
	if n := g.stats.resends.Load(); n != 1 {
		t.Errorf("resends = %d, want 1", n)
	}
}

// The first reply wins; a reply to the other attempt arriving later is
// acknowledged, counted and dropped.
func TestLateDuplicateDropped(t *testing.T) {
	f := newFake("hello", "n1")
	held := make(chan *lp.Process, 1)
	f.handle = func(node string, p *lp.Process) error {
		if p.Attempt == 0 {
			held <- p // slow, not lost
			return nil
		}
		return answer(f)(node, p)
	}
	set := testSettings()
	set.attemptTimeout = 30 * time.Millisecond
	g, url := newTest(t, f, set)
	if code, _, body := get(t, url+"/hello?name=d"); code != 200 || body != "Hello, d!" {
		t.Fatalf("got %d %q", code, body)
	}
	if err := g.accept("n1", greet("n1", <-held)); err != nil {
		t.Fatalf("late reply refused: %v", err)
	}
	if n := g.stats.duplicates.Load(); n != 1 {
		t.Errorf("late duplicates = %d, want 1", n)
	}
}

// Every attempt lost: 504 saying how many attempts were made.
func TestAttemptsExhausted(t *testing.T) {
	f := newFake("hello", "n1")
	f.handle = func(string, *lp.Process) error { return nil }
	set := testSettings()
	set.attemptTimeout = 10 * time.Millisecond
	g, url := newTest(t, f, set)
	code, _, body := get(t, url+"/hello?name=x")
	if code != http.StatusGatewayTimeout || !strings.Contains(body, "3 attempts") || !strings.Contains(body, "hello") {
		t.Fatalf("got %d %q, want 504 naming hello and 3 attempts", code, body)
	}
	if got := f.sends(); len(got) != 3 {
		t.Errorf("sends %v, want 3", got)
	}
	if n := g.stats.timeouts.Load(); n != 1 {
		t.Errorf("timeouts = %d", n)
	}
}

func TestNoHolder(t *testing.T) {
	f := newFake("other", "n1")
	_, url := newTest(t, f, testSettings())
	code, _, body := get(t, url+"/hello?name=x")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "no live node holds component hello") {
		t.Fatalf("got %d %q, want 503 naming hello", code, body)
	}
	if len(f.sends()) != 0 || f.refused != 0 {
		t.Errorf("something was sent")
	}
}

// A refusing holder is dropped and the next one picked within the attempt.
func TestRefusalRepicks(t *testing.T) {
	f := newFake("hello", "n1", "n2")
	f.handle = func(node string, p *lp.Process) error {
		if node == "n1" {
			return errors.New("overloaded")
		}
		return answer(f)(node, p)
	}
	_, url := newTest(t, f, testSettings())
	if code, h, body := get(t, url+"/hello?name=r"); code != 200 || body != "Hello, r!" || h.Get("Tsubame-Attempt") != "0" {
		t.Fatalf("got %d %q attempt %s", code, body, h.Get("Tsubame-Attempt"))
	}
	if got := f.sends(); !slices.Equal(got, []string{"n2/0"}) {
		t.Errorf("sends %v, want [n2/0]", got)
	}
}

// A holder that never acknowledges (dead, and membership has not noticed)
// costs a fraction of the attempt, and the next holder answers within it.
func TestSilentHolderRepicked(t *testing.T) {
	f := newFake("hello", "n1", "n2")
	f.silent = "n1"
	set := testSettings()
	set.attemptTimeout = 300 * time.Millisecond
	_, url := newTest(t, f, set)
	if code, h, body := get(t, url+"/hello?name=s"); code != 200 || body != "Hello, s!" || h.Get("Tsubame-Attempt") != "0" {
		t.Fatalf("got %d %q attempt %s, want an answer from n2 in attempt 0", code, body, h.Get("Tsubame-Attempt"))
	}
}

func TestAllRefuse(t *testing.T) {
	f := newFake("hello", "n1", "n2")
	f.handle = func(node string, p *lp.Process) error { return errors.New("shutting down") }
	set := testSettings()
	set.attemptTimeout = 10 * time.Millisecond
	_, url := newTest(t, f, set)
	code, _, body := get(t, url+"/hello?name=r")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "no node accepted") || !strings.Contains(body, "n2: shutting down") {
		t.Fatalf("got %d %q", code, body)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.refused != 6 {
		t.Errorf("refused %d sends, want 2 holders x 3 attempts", f.refused)
	}
}

// A failed root entry maps its code to a status with a body that says why.
func TestFailureStatus(t *testing.T) {
	for _, tc := range []struct {
		code       uint32
		msg        string
		status     int
		wantInBody string
	}{
		{404, "no such user", 404, "no such user"},
		{429, "", 429, "Too Many Requests"},
		{abi.CodeTimeout, "step ran past 1s", 504, "timeout (code 2): step ran past 1s"},
		{abi.CodeNoComponent, "greet", 503, "no component (code 4)"},
		{abi.CodeUnavailable, "all busy", 503, "unavailable (code 7)"},
		{abi.CodeTrap, "unreachable", 500, "hello failed: trap (code 1): unreachable"},
		{123, "mine", 500, "component error (code 123): mine"},
	} {
		f := newFake("hello", "n1")
		f.handle = func(node string, p *lp.Process) error {
			go func() {
				p.Fail(tc.code, tc.msg)
				f.g.accept(node, p)
			}()
			return nil
		}
		_, url := newTest(t, f, testSettings())
		code, h, body := get(t, url+"/hello")
		if code != tc.status || !strings.Contains(body, tc.wantInBody) {
			t.Errorf("code %d: got %d %q, want %d containing %q", tc.code, code, body, tc.status, tc.wantInBody)
		}
		if got := h.Get("Tsubame-Code"); got != fmt.Sprint(tc.code) {
			t.Errorf("code %d: Tsubame-Code %q", tc.code, got)
		}
	}
}

// An oversized body gets 413 and the gateway keeps serving.
func TestBodyTooLarge(t *testing.T) {
	echo := Route{Method: "POST", Path: "/echo", Component: "hello", Kind: "hello", Input: "body"}
	f := newFake("hello", "n1")
	g, url := newTest(t, f, testSettings(), echo)
	for _, chunked := range []bool{false, true} {
		var body io.Reader = strings.NewReader(strings.Repeat("x", 1025))
		if chunked { // no Content-Length: caught while reading
			body = io.MultiReader(body)
		}
		res, err := http.Post(url+"/echo", "text/plain", body)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 413 || !strings.Contains(string(b), "at most 1024 bytes") {
			t.Errorf("chunked=%v: got %d %q, want 413", chunked, res.StatusCode, b)
		}
	}
	res, err := http.Post(url+"/echo", "text/plain", strings.NewReader(strings.Repeat("y", 1024)))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || string(b) != "Hello, "+strings.Repeat("y", 1024)+"!" {
		t.Errorf("after 413: got %d, %d bytes", res.StatusCode, len(b))
	}
	if n := g.stats.tooLarge.Load(); n != 2 {
		t.Errorf("too_large = %d, want 2", n)
	}
}

func TestUnknownRoute(t *testing.T) {
	f := newFake("hello", "n1")
	_, url := newTest(t, f, testSettings())
	if code, _, _ := get(t, url+"/nope"); code != 404 {
		t.Errorf("unknown path: %d, want 404", code)
	}
	res, err := http.Post(url+"/hello", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 405 || res.Header.Get("Allow") == "" {
		t.Errorf("wrong method: %d Allow=%q, want 405 with Allow", res.StatusCode, res.Header.Get("Allow"))
	}
}

// Beyond max_in_flight a request is shed with 503 at once.
func TestBusy(t *testing.T) {
	f := newFake("hello", "n1")
	release := make(chan struct{})
	f.handle = func(node string, p *lp.Process) error {
		go func() {
			<-release
			f.g.accept(node, greet(node, p))
		}()
		return nil
	}
	set := testSettings()
	set.maxInFlight = 1
	g, url := newTest(t, f, set)
	done := make(chan string)
	go func() {
		_, _, body := get(t, url+"/hello?name=a")
		done <- body
	}()
	testutil.WaitFor(t, "the first send", func() bool { return len(f.sends()) == 1 })
	code, h, body := get(t, url+"/hello?name=b")
	if code != 503 || h.Get("Retry-After") == "" || !strings.Contains(body, "busy") {
		t.Errorf("second request: %d %q, want 503 busy with Retry-After", code, body)
	}
	close(release)
	if body := <-done; body != "Hello, a!" {
		t.Errorf("first request: %q", body)
	}
	if n := g.stats.busy.Load(); n != 1 {
		t.Errorf("busy = %d", n)
	}
}

func TestHealth(t *testing.T) {
	f := &fakeNet{byComp: map[string][]cluster.Peer{}}
	f.handle = answer(f)
	_, url := newTest(t, f, testSettings())
	if code, _, body := get(t, url+"/healthz"); code != 503 || !strings.HasPrefix(body, "no nodes\n") {
		t.Errorf("no nodes: %d %q", code, body)
	}
	f.mu.Lock()
	f.byComp["hello"] = []cluster.Peer{holder("n1"), holder("n2")}
	f.mu.Unlock()
	if code, _, body := get(t, url+"/healthz"); code != 200 || !strings.HasPrefix(body, "ok\nnodes 2\n") {
		t.Errorf("two nodes: %d %q", code, body)
	}
}

func TestAcceptUnfinished(t *testing.T) {
	f := &fakeNet{}
	g, err := newCore("gw", testSettings(), nil, f, f, first, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := g.accept("n1", lp.New("gw", "hello", "hello", nil)); !errors.Is(err, errNotFinished) {
		t.Errorf("unfinished LP: %v, want errNotFinished", err)
	}
}

// newFake is a network where nodes hold component and answer with greet.
func newFake(component string, nodes ...string) *fakeNet {
	f := &fakeNet{byComp: map[string][]cluster.Peer{}}
	for _, n := range nodes {
		f.byComp[component] = append(f.byComp[component], holder(n))
	}
	f.handle = answer(f)
	return f
}

// A component whose live holders' reports are only stale (a stalled node)
// is not "held by nobody": the request waits for a report to turn fresh
// and succeeds.
func TestStaleHoldersAreAwaited(t *testing.T) {
	f := &fakeNet{byComp: map[string][]cluster.Peer{}, stale: map[string][]cluster.Peer{"hello": {holder("n1")}}, freshAfter: 3}
	f.handle = answer(f)
	_, url := newTest(t, f, testSettings())
	code, _, body := get(t, url+"/hello?name=stall")
	if code != http.StatusOK || body != "Hello, stall!" {
		t.Fatalf("status %d %q, want 200 once n1's report is fresh", code, body)
	}
	if got := f.sends(); !slices.Equal(got, []string{"n1/0"}) {
		t.Errorf("sends %v, want n1/0: the first attempt waits rather than failing", got)
	}
}

// Stale holders that stay stale: 503 once the wait (bounded by the attempt)
// is over, after polling for them.
func TestStaleHoldersThatStayStale(t *testing.T) {
	f := &fakeNet{byComp: map[string][]cluster.Peer{}, stale: map[string][]cluster.Peer{"hello": {holder("n1")}}}
	f.handle = answer(f)
	set := testSettings()
	set.attempts, set.attemptTimeout = 1, 100*time.Millisecond
	_, url := newTest(t, f, set)
	code, _, body := get(t, url+"/hello?name=x")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "no live node holds component hello") {
		t.Fatalf("status %d %q, want 503 no live node holds", code, body)
	}
	if n := f.holderLookups(); n < 2 {
		t.Errorf("holders looked up %d times, want a poll for a fresh one", n)
	}
}

// A component no live node holds gets its 503 at once: there is nothing to
// wait for.
func TestUnheldComponentFailsAtOnce(t *testing.T) {
	f := &fakeNet{byComp: map[string][]cluster.Peer{"other": {holder("n1")}}}
	f.handle = answer(f)
	_, url := newTest(t, f, testSettings())
	code, _, body := get(t, url+"/hello?name=x")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "no live node holds component hello") {
		t.Fatalf("status %d %q, want 503 no live node holds", code, body)
	}
	if n := f.holderLookups(); n != 1 {
		t.Errorf("holders looked up %d times, want 1: no polling when nobody holds it", n)
	}
}
