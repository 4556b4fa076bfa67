package obs

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/tsubame-rt/tsubame/lp"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// The per-event costs of observing, for the hot path's budget:
//
//	go test -run '^$' -bench . -benchmem ./internal/obs
//
// One /hello request is 3 steps, 4 hops and 1 HTTP answer, and its origin
// and the nodes it leaves record its journey 4 times.

func BenchmarkStepMetrics(b *testing.B) {
	m := NewNodeMetrics(NewRegistry(), NodeGauges{})
	comp := string([]byte("hello"))
	b.ReportAllocs()
	for b.Loop() {
		m.Step(comp, lp.OutcomeReply, 50e-6, 10e-6)
	}
}

func BenchmarkRequestMetrics(b *testing.B) {
	m := NewGatewayMetrics(NewRegistry(), GatewayCounters{})
	b.ReportAllocs()
	for b.Loop() {
		m.Request("GET /hello", 200, 1e-3)
	}
}

func BenchmarkRingRecord(b *testing.B) {
	r := NewRing("gw", 0)
	p := journeyLP(b)
	b.ReportAllocs()
	for b.Loop() {
		r.Record(p, "GET /hello", time.Millisecond)
	}
}

// BenchmarkStepSpan is one sampled step's span, ended into the SDK's batch
// processor (exported to memory).
func BenchmarkStepSpan(b *testing.B) {
	tr, err := NewTracer(context.Background(), "n1", "node", TraceConfig{}, tracetest.NewInMemoryExporter())
	if err != nil {
		b.Fatal(err)
	}
	defer tr.Shutdown(context.Background())
	p := journeyLP(b)
	b.ReportAllocs()
	for b.Loop() {
		tr.Step(p, &p.Trace[1])
	}
}

// BenchmarkRequestSpanOff is a request with tracing off: what every request
// pays for the tracing code path.
func BenchmarkRequestSpanOff(b *testing.B) {
	var tr *Tracer
	req := httptest.NewRequest("GET", "/hello", nil)
	var tc lp.TraceContext
	b.ReportAllocs()
	for b.Loop() {
		tr.StartRequest(context.Background(), req, "GET /hello", &tc).End(200, 1)
	}
}
