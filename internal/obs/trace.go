package obs

import (
	"context"
	"errors"
	"fmt"
	"github.com/tsubame-rt/tsubame/internal/tomlconf"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/tsubame-rt/tsubame/lp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// TraceConfig is the [tracing] section of a node's or gateway's TOML.
// Tracing is off unless Endpoint is set: no span is created and nothing is
// exported. A traceparent that arrives with a request is carried in the LP
// either way, so nodes that do trace join the caller's trace.
type TraceConfig struct {
	// Endpoint is the OTLP/HTTP traces URL of a collector, e.g.
	// "http://127.0.0.1:4318/v1/traces" (https with the system's roots).
	Endpoint string `toml:"otlp_endpoint"`
	// Sample is the fraction (0 to 1) of requests arriving without a
	// traceparent that the gateway traces. Default 1: every request. A
	// request whose traceparent says sampled is always traced, one that
	// says not sampled never is (parent-based sampling).
	Sample *float64 `toml:"sample"`
	// Headers are sent with every export (an API key, say).
	Headers map[string]string `toml:"headers"`
}

// Validate names the first bad field.
func (c TraceConfig) Validate() error {
	if c.Sample != nil && (*c.Sample < 0 || *c.Sample > 1) {
		return &tomlconf.Problem{Key: "tracing.sample", Err: fmt.Errorf("%v is outside 0 to 1", *c.Sample)}
	}
	if c.Endpoint != "" {
		u, err := url.Parse(c.Endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return &tomlconf.Problem{Key: "tracing.otlp_endpoint", Err: fmt.Errorf("%q is not an http(s) URL", c.Endpoint)}
		}
	}
	return nil
}

// Tracer makes the spans of one node or gateway. A nil *Tracer is tracing
// off: every method is a no-op that costs a nil check.
type Tracer struct {
	tp   *sdktrace.TracerProvider
	tr   trace.Tracer
	name string
}

// NewTracer starts tracing for the member name ("node" or "gateway" is its
// role) as c says, or returns nil when c.Endpoint is empty and exp is nil.
// exp, if not nil, replaces the OTLP exporter (tests, benchmarks).
func NewTracer(ctx context.Context, name, role string, c TraceConfig, exp sdktrace.SpanExporter) (*Tracer, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if c.Endpoint == "" && exp == nil {
		return nil, nil
	}
	if exp == nil {
		var err error
		exp, err = otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(c.Endpoint), otlptracehttp.WithHeaders(c.Headers))
		if err != nil {
			return nil, fmt.Errorf("tracing: OTLP exporter for %s: %w", c.Endpoint, err)
		}
	}
	ratio := 1.0
	if c.Sample != nil {
		ratio = *c.Sample
	}
	res := resource.NewSchemaless(
		attribute.String("service.name", "tsubame"),
		attribute.String("service.instance.id", name),
		attribute.String("tsubame.role", role),
	)
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp),
		sdktrace.WithResource(res),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(ratio))),
	)
	return &Tracer{tp: tp, tr: tp.Tracer("github.com/tsubame-rt/tsubame"), name: name}, nil
}

// Shutdown flushes the spans not yet exported, within ctx.
func (t *Tracer) Shutdown(ctx context.Context) error {
	if t == nil {
		return nil
	}
	return t.tp.Shutdown(ctx)
}

// Flush exports the spans ended so far, within ctx.
func (t *Tracer) Flush(ctx context.Context) error {
	if t == nil {
		return nil
	}
	return t.tp.ForceFlush(ctx)
}

var propagator = propagation.TraceContext{}

// Request is the span of one HTTP request at its origin; the zero value
// (tracing off, or not sampled) ends as a no-op.
type Request struct {
	span trace.Span
}

// StartRequest begins the span of an HTTP request for route (its pattern)
// and writes the context the LP carries into tc: the request's own span when
// tracing is on, else the incoming traceparent as it came, so that the
// nodes still join the caller's trace. With tracing off and no traceparent
// it does nothing and allocates nothing.
func (t *Tracer) StartRequest(ctx context.Context, r *http.Request, route string, tc *lp.TraceContext) Request {
	if t == nil {
		if len(r.Header["Traceparent"]) == 0 {
			return Request{}
		}
		sc := trace.SpanContextFromContext(propagator.Extract(ctx, propagation.HeaderCarrier(r.Header)))
		if sc.IsValid() {
			*tc = toLP(sc)
		}
		return Request{}
	}
	if len(r.Header["Traceparent"]) > 0 {
		ctx = propagator.Extract(ctx, propagation.HeaderCarrier(r.Header))
	}
	_, span := t.tr.Start(ctx, r.Method+" "+route, trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(
			attribute.String("http.request.method", r.Method),
			attribute.String("http.route", route),
			attribute.String("tsubame.gateway", t.name),
		))
	*tc = toLP(span.SpanContext())
	return Request{span: span}
}

// SetLP names the LP in the request's span.
func (q Request) SetLP(p *lp.Process) {
	if q.span != nil && q.span.IsRecording() {
		q.span.SetAttributes(attribute.String("tsubame.lp.id", p.ID.String()))
	}
}

// End closes the request's span with the HTTP status it was answered with.
func (q Request) End(status int, attempts int) {
	if q.span == nil {
		return
	}
	if q.span.IsRecording() {
		q.span.SetAttributes(attribute.Int("http.response.status_code", status), attribute.Int("tsubame.attempts", attempts))
		if status >= 500 {
			q.span.SetStatus(codes.Error, strconv.Itoa(status))
		}
	}
	q.span.End()
}

func toLP(sc trace.SpanContext) lp.TraceContext {
	tc := lp.TraceContext{TraceID: sc.TraceID(), SpanID: sc.SpanID(), Flags: byte(sc.TraceFlags())}
	if ts := sc.TraceState(); ts.Len() > 0 {
		if s := ts.String(); len(s) <= lp.MaxTraceState {
			tc.State = s
		}
	}
	return tc
}

func fromLP(tc *lp.TraceContext) trace.SpanContext {
	cfg := trace.SpanContextConfig{TraceID: tc.TraceID, SpanID: tc.SpanID, TraceFlags: trace.TraceFlags(tc.Flags), Remote: true}
	if tc.State != "" {
		if ts, err := trace.ParseTraceState(tc.State); err == nil {
			cfg.TraceState = ts
		}
	}
	return trace.NewSpanContext(cfg)
}

// Step records the span of one step the node ran: the LP's trace step s,
// of the entry it names, which left the node afterwards for reason next
// (lp.MoveNone: the next step ran here). Only LPs whose trace context says
// sampled get spans, so the origin's sampling decision holds cluster-wide.
func (t *Tracer) Step(p *lp.Process, s *lp.Step) {
	if t == nil || !p.TraceContext.Sampled() || s.Start == 0 {
		return
	}
	ctx := trace.ContextWithRemoteSpanContext(context.Background(), fromLP(&p.TraceContext))
	comp, kind, version := "", "", ""
	if i := int(s.Entry); i >= 0 && i < len(p.Entries) {
		e := &p.Entries[i]
		comp, kind = e.Target, e.Kind
		if !e.Module.IsZero() {
			version = e.Module.Short()
		}
	}
	start := time.UnixMicro(s.Start)
	_, span := t.tr.Start(ctx, "step "+comp+"/"+kind, trace.WithTimestamp(start),
		trace.WithAttributes(
			attribute.String("tsubame.node", s.Node),
			attribute.String("tsubame.component", comp),
			attribute.String("tsubame.kind", kind),
			attribute.String("tsubame.version", version),
			attribute.String("tsubame.outcome", s.Outcome.String()),
			attribute.Int64("tsubame.queue_wait_us", int64(s.WaitMicros)),
			attribute.Int64("tsubame.step_us", int64(s.Micros)),
			attribute.String("tsubame.next", s.Next.String()),
			attribute.String("tsubame.lp.id", p.ID.String()),
			attribute.Int("tsubame.entry", int(s.Entry)),
			attribute.Int("tsubame.attempt", int(p.Attempt)),
		))
	if s.Outcome == lp.OutcomeFail {
		span.SetStatus(codes.Error, "step failed")
	}
	span.End(trace.WithTimestamp(start.Add(time.Duration(s.Micros) * time.Microsecond)))
}

// errNoTraceparent is what ParseTraceparent says of an empty header.
var errNoTraceparent = errors.New("no traceparent")

// ParseTraceparent reads a W3C traceparent header value into an LP trace
// context (for tools that submit LPs without an HTTP request).
func ParseTraceparent(v string) (lp.TraceContext, error) {
	if v == "" {
		return lp.TraceContext{}, errNoTraceparent
	}
	h := http.Header{}
	h.Set("traceparent", v)
	sc := trace.SpanContextFromContext(propagator.Extract(context.Background(), propagation.HeaderCarrier(h)))
	if !sc.IsValid() {
		return lp.TraceContext{}, fmt.Errorf("traceparent %q is not a valid W3C trace context", v)
	}
	return toLP(sc), nil
}
