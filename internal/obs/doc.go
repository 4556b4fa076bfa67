// Package obs holds what nodes and gateways share to make a cluster visible:
// the Prometheus metrics (Metrics), the bounded ring of recent journeys each
// node and gateway keeps (Ring), OpenTelemetry spans for steps and requests
// with the W3C trace context carried inside the LP (Tracer), the log set-up
// (NewLogger), and the live dashboard served at /ui/ (UI).
//
// Everything on a request's hot path is allocation-free once warm: metric
// handles are resolved once per component or route and cached, the ring
// reuses its slots, and with tracing off no span is ever created. obs never
// decides anything about an LP: it records what node and gateway did.
package obs
