package obs

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/tsubame-rt/tsubame/lp"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

func journeyLP(t testing.TB) *lp.Process {
	t.Helper()
	p := lp.New("gw", "hello", "say", []byte("world"))
	p.TraceContext = lp.TraceContext{TraceID: [16]byte{1, 2}, SpanID: [8]byte{3}, Flags: 1}
	p.Record(lp.Step{Node: "node-1", Entry: 0, Outcome: lp.OutcomeCall, Micros: 12, Start: time.Now().UnixMicro(), WaitMicros: 3, Next: lp.MoveNotHeld}, 16)
	if err := p.Call("greet", "greet", []byte("world"), []byte("c"), lp.Limits{}); err != nil {
		t.Fatal(err)
	}
	p.Entries[0].Module = lp.Hash{0xab}
	p.Entries[1].Module = lp.Hash{0xcd}
	_ = p.Reply([]byte("Hello, world"))
	p.Record(lp.Step{Node: "node-2", Entry: 1, Outcome: lp.OutcomeReply, Micros: 7, Start: time.Now().UnixMicro(), Next: lp.MoveNotHeld}, 16)
	_ = p.Reply([]byte("Hello, world!"))
	p.Record(lp.Step{Node: "node-1", Entry: 0, Outcome: lp.OutcomeReply, Micros: 5, Start: time.Now().UnixMicro(), Next: lp.MoveReturn}, 16)
	return p
}

func TestMetricsScrapeAndMove(t *testing.T) {
	reg := NewRegistry()
	queue := 0.0
	nm := NewNodeMetrics(reg, NodeGauges{
		Queue: func() float64 { return queue }, Workers: 4,
		Pools: func() []PoolStat {
			return []PoolStat{{Component: "hello", Version: "abcdef", Instances: 2, Idle: 1, Recycles: 3}}
		},
	})
	var resends, dups float64
	gm := NewGatewayMetrics(reg, GatewayCounters{
		InFlight: func() float64 { return 0 }, Resends: func() float64 { return resends }, Duplicates: func() float64 { return dups },
		Failures: map[string]func() float64{"timeout": func() float64 { return 2 }},
	})
	srv := httptest.NewServer(Handler(reg))
	defer srv.Close()

	scrape := func() map[string]float64 {
		fams, err := Scrape(nil, srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		get := func(name string, labels map[string]string) float64 {
			v, _ := Value(fams, name, labels)
			return v
		}
		return map[string]float64{
			"steps":     get("tsubame_steps_total", map[string]string{"component": "hello", "outcome": "reply"}),
			"steptime":  get("tsubame_step_duration_seconds", map[string]string{"component": "hello"}),
			"wait":      get("tsubame_queue_wait_seconds", nil),
			"migrate":   get("tsubame_migrations_total", map[string]string{"reason": "not-held"}),
			"hopbytes":  get("tsubame_hop_bytes", nil),
			"queue":     get("tsubame_queue_length", nil),
			"http200":   get("tsubame_http_requests_total", map[string]string{"route": "GET /hello", "code": "200"}),
			"http503":   get("tsubame_http_requests_total", map[string]string{"route": "GET /hello", "code": "503"}),
			"resends":   get("tsubame_gateway_resends_total", nil),
			"dups":      get("tsubame_gateway_duplicates_total", nil),
			"recycles":  get("tsubame_instance_recycles_total", map[string]string{"component": "hello"}),
			"instances": get("tsubame_instances", map[string]string{"component": "hello"}),
			"members":   get("tsubame_membership_changes_total", map[string]string{"event": "join"}),
			"installs":  get("tsubame_installs_total", map[string]string{"source": "upload"}),
			"autogrow":  get("tsubame_autogrow_actions_total", map[string]string{"action": "install"}),
			"goroutine": get("go_goroutines", nil),
		}
	}
	before := scrape()
	for range 3 {
		nm.Step("hello", lp.OutcomeReply, 0.0001, 0.00001)
		nm.Migrated(lp.MoveNotHeld)
		nm.Sent(4096, 0.0002)
		gm.Request("GET /hello", 200, 0.001)
	}
	gm.Request("GET /hello", 503, 0.001)
	resends, dups = 1, 1
	nm.Membership("join")
	nm.Installed("upload")
	nm.Autogrow("install")
	queue = 7
	after := scrape()
	want := map[string]float64{"steps": 3, "steptime": 3, "wait": 3, "migrate": 3, "hopbytes": 3, "queue": 7,
		"http200": 3, "http503": 1, "resends": 1, "dups": 1, "members": 1, "installs": 1, "autogrow": 1}
	for k, d := range want {
		if got := after[k] - before[k]; got != d {
			t.Errorf("%s moved by %v, want %v", k, got, d)
		}
	}
	if after["recycles"] != 3 || after["instances"] != 2 || after["goroutine"] == 0 {
		t.Errorf("pool or runtime metrics missing: %v", after)
	}
}

// The hot-path calls allocate nothing once a component's or route's handles
// are cached.
func TestMetricsHotPathAllocs(t *testing.T) {
	reg := NewRegistry()
	nm := NewNodeMetrics(reg, NodeGauges{})
	gm := NewGatewayMetrics(reg, GatewayCounters{})
	comp := string([]byte("hello")) // not a constant: as a decoded LP's name would be
	nm.Step(comp, lp.OutcomeReply, 1e-4, 1e-5)
	gm.Request("GET /hello", 200, 1e-3)
	if n := testing.AllocsPerRun(200, func() {
		nm.Step(comp, lp.OutcomeReply, 1e-4, 1e-5)
		nm.Migrated(lp.MoveNotHeld)
		nm.Sent(4096, 2e-4)
		gm.Request("GET /hello", 200, 1e-3)
		gm.Sent(100, 1e-4)
	}); n != 0 {
		t.Fatalf("%v allocations per step+hop+request, want 0", n)
	}
	var nilm *NodeMetrics
	nilm.Step("x", lp.OutcomeReply, 0, 0) // metrics off: no-op, no panic
}

func TestRingRecordFindRecent(t *testing.T) {
	r := NewRing("gw", 4)
	p := journeyLP(t)
	r.Record(p, "GET /hello", 3*time.Millisecond)
	j, ok := r.Find(p.ID.String()[:8])
	if !ok {
		t.Fatal("journey not found by an 8-digit prefix")
	}
	if j.Status != "ok" || !j.Finished || j.Route != "GET /hello" || j.Component != "hello" || len(j.Steps) != 3 || j.RecordedBy != "gw" {
		t.Fatalf("journey %+v", j)
	}
	s := j.Steps[1]
	if s.Node != "node-2" || s.Component != "greet" || s.Kind != "greet" || s.Version != (lp.Hash{0xcd}).Short() || s.Outcome != "reply" || s.Next != "not-held" {
		t.Fatalf("step 1 %+v", s)
	}
	if j.Steps[0].WaitUS != 3 || j.Steps[2].Next != "return" || j.TraceID == "" || j.ElapsedMS != 3 {
		t.Fatalf("journey details %+v", j)
	}
	// A partial record of the same LP (a node it passed) loses to the finished one.
	partial := journeyLP(t)
	partial.ID = p.ID
	partial.Trace = partial.Trace[:1]
	partial.Active = 0
	r.Record(partial, "", 0)
	if j, _ := r.Find(p.ID.String()); !j.Finished {
		t.Fatal("Find preferred a partial journey over the finished one")
	}
	// The ring keeps only the newest 4.
	for range 5 {
		r.Record(journeyLP(t), "", 0)
	}
	if _, ok := r.Find(p.ID.String()); ok {
		t.Fatal("the ring kept more than its size")
	}
	if got := r.Recent(10); len(got) != 4 {
		t.Fatalf("Recent(10) = %d journeys, want 4", len(got))
	}
	if _, ok := r.Find("abc"); ok {
		t.Fatal("Find took a prefix shorter than 8 digits")
	}
}

func TestRingRecordAllocs(t *testing.T) {
	r := NewRing("gw", 8)
	p := journeyLP(t)
	for range 8 {
		r.Record(p, "GET /hello", time.Millisecond)
	}
	if n := testing.AllocsPerRun(100, func() { r.Record(p, "GET /hello", time.Millisecond) }); n != 0 {
		t.Fatalf("%v allocations per record, want 0", n)
	}
}

func TestRingHTTP(t *testing.T) {
	r := NewRing("node-1", 8)
	p := journeyLP(t)
	r.Record(p, "", 0)
	mux := http.NewServeMux()
	r.Routes(mux, "/v1")
	srv := httptest.NewServer(mux)
	defer srv.Close()
	var list Journeys
	getJSON(t, srv.URL+"/v1/journeys?limit=5", http.StatusOK, &list)
	if list.RecordedBy != "node-1" || len(list.Journeys) != 1 || list.Journeys[0].ID != p.ID.String() {
		t.Fatalf("list %+v", list)
	}
	var j Journey
	getJSON(t, srv.URL+"/v1/journeys/"+p.ID.String(), http.StatusOK, &j)
	if len(j.Steps) != 3 {
		t.Fatalf("journey %+v", j)
	}
	getJSON(t, srv.URL+"/v1/journeys/"+strings.Repeat("0", 32), http.StatusNotFound, nil)
	getJSON(t, srv.URL+"/v1/journeys/xyz", http.StatusBadRequest, nil)
	getJSON(t, srv.URL+"/v1/journeys?limit=-1", http.StatusBadRequest, nil)
}

func getJSON(t *testing.T, url string, status int, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != status {
		t.Fatalf("GET %s: %s, want %d", url, resp.Status, status)
	}
	if v != nil {
		if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
			t.Fatal(err)
		}
	}
}

func TestTracerSpans(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tr, err := NewTracer(context.Background(), "gw", "gateway", TraceConfig{}, exp)
	if err != nil || tr == nil {
		t.Fatalf("tracer %v %v", tr, err)
	}
	req := httptest.NewRequest("GET", "/hello?name=x", nil)
	const parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	req.Header.Set("traceparent", parent)
	p := journeyLP(t)
	p.TraceContext = lp.TraceContext{}
	q := tr.StartRequest(context.Background(), req, "GET /hello", &p.TraceContext)
	if got := p.TraceContext.TraceID; got != [16]byte{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36} {
		t.Fatalf("the LP's trace ID %x is not the incoming traceparent's", got)
	}
	if !p.TraceContext.Sampled() {
		t.Fatal("a sampled traceparent did not make a sampled LP")
	}
	for i := range p.Trace {
		tr.Step(p, &p.Trace[i])
	}
	q.SetLP(p)
	q.End(200, 1)
	if err := tr.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	spans := exp.GetSpans()
	if len(spans) != 4 {
		t.Fatalf("%d spans, want 3 steps and the request", len(spans))
	}
	reqSpan := spans[len(spans)-1]
	if reqSpan.Parent.SpanID().String() != "00f067aa0ba902b7" {
		t.Fatalf("request span's parent %s, want the incoming one", reqSpan.Parent.SpanID())
	}
	for _, s := range spans[:3] {
		if s.SpanContext.TraceID() != reqSpan.SpanContext.TraceID() || s.Parent.SpanID() != reqSpan.SpanContext.SpanID() {
			t.Fatalf("step span %q is not a child of the request span", s.Name)
		}
	}
	attrs := map[string]string{}
	for _, a := range spans[1].Attributes {
		attrs[string(a.Key)] = a.Value.Emit()
	}
	if attrs["tsubame.node"] != "node-2" || attrs["tsubame.component"] != "greet" || attrs["tsubame.next"] != "not-held" ||
		attrs["tsubame.version"] != (lp.Hash{0xcd}).Short() || attrs["tsubame.queue_wait_us"] == "" {
		t.Fatalf("step span attributes %v", attrs)
	}

	// Not sampled upstream: no spans, but the context still travels.
	exp.Reset()
	tr, _ = NewTracer(context.Background(), "gw", "gateway", TraceConfig{}, exp)
	req.Header.Set("traceparent", strings.TrimSuffix(parent, "01")+"00")
	p.TraceContext = lp.TraceContext{}
	q = tr.StartRequest(context.Background(), req, "GET /hello", &p.TraceContext)
	tr.Step(p, &p.Trace[0])
	q.End(200, 1)
	_ = tr.Flush(context.Background())
	if n := len(exp.GetSpans()); n != 0 || p.TraceContext.Sampled() || p.TraceContext.IsZero() {
		t.Fatalf("unsampled: %d spans, context %+v", n, p.TraceContext)
	}
}

// Tracing off: no tracer, and an incoming traceparent still reaches the LP.
func TestTracingOff(t *testing.T) {
	tr, err := NewTracer(context.Background(), "gw", "gateway", TraceConfig{}, nil)
	if err != nil || tr != nil {
		t.Fatalf("tracer %v, err %v: want nil, nil", tr, err)
	}
	var tc lp.TraceContext
	req := httptest.NewRequest("GET", "/", nil)
	if n := testing.AllocsPerRun(100, func() { tr.StartRequest(context.Background(), req, "GET /", &tc).End(200, 1) }); n != 0 {
		t.Fatalf("tracing off costs %v allocations per request", n)
	}
	req.Header.Set("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	tr.StartRequest(context.Background(), req, "GET /", &tc)
	if tc.IsZero() || !tc.Sampled() {
		t.Fatalf("incoming traceparent not carried with tracing off: %+v", tc)
	}
	if _, err := NewTracer(context.Background(), "gw", "gateway", TraceConfig{Endpoint: "ftp://x"}, nil); err == nil {
		t.Fatal("accepted an ftp endpoint")
	}
	bad := 1.5
	if err := (TraceConfig{Sample: &bad}).Validate(); err == nil {
		t.Fatal("accepted sample 1.5")
	}
}

func TestNewLogger(t *testing.T) {
	var buf bytes.Buffer
	log, err := NewLogger(&buf, LogConfig{Level: "warn"}, false)
	if err != nil {
		t.Fatal(err)
	}
	log.Info("hidden")
	log.Warn("shown", "lp", "abc", "node", "n1")
	var line map[string]any
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatalf("not a terminal, so JSON expected: %q: %v", buf.String(), err)
	}
	if line["msg"] != "shown" || line["lp"] != "abc" {
		t.Fatalf("line %v", line)
	}
	buf.Reset()
	log, _ = NewLogger(&buf, LogConfig{Level: "error", Format: "text"}, true)
	log.Debug("dbg")
	if !strings.Contains(buf.String(), "level=DEBUG msg=dbg") {
		t.Fatalf("-v did not lower the level, or text was not used: %q", buf.String())
	}
	if _, err := NewLogger(&buf, LogConfig{Level: "loud"}, false); err == nil || !strings.Contains(err.Error(), "log.level") {
		t.Fatalf("bad level: %v", err)
	}
	if _, err := NewLogger(&buf, LogConfig{Format: "xml"}, false); err == nil {
		t.Fatal("bad format accepted")
	}
}
