package transport

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// moduleServer answers RequestModule with a fixed module and echoes the
// requester's name for RequestComponents.
func moduleServer(module []byte) RequestHandler {
	return RequestHandlerFunc(func(ctx context.Context, from string, kind RequestKind, body []byte) ([]byte, error) {
		switch kind {
		case RequestModule:
			if string(body) != "want" {
				return nil, &RequestError{Status: StatusNotFound, Msg: "no such module"}
			}
			return module, nil
		case RequestComponents:
			return []byte("hello " + from), nil
		case RequestInstall:
			return nil, errors.New("install failed: bad module")
		case RequestRemove:
			panic("boom")
		}
		return nil, &RequestError{Status: StatusUnsupported, Msg: kind.String()}
	})
}

func TestRequest(t *testing.T) {
	ca := testCA(t)
	module := bytes.Repeat([]byte("wasm"), 1<<20) // 4 MiB: many flow-control windows
	a := start(t, ca, "a", nil)
	b := start(t, ca, "b", newRecorder(), func(c *Config) { c.Requests = moduleServer(module) })

	got, err := a.Request(ctxT(t), b.Addr(), RequestModule, []byte("want"), 8<<20)
	if err != nil || !bytes.Equal(got, module) {
		t.Fatalf("module request: %d bytes, %v", len(got), err)
	}
	if got, err := a.Request(ctxT(t), b.Addr(), RequestComponents, nil, 1024); err != nil || string(got) != "hello a" {
		t.Fatalf("components request: %q, %v (want the requester named from its certificate)", got, err)
	}
	for _, tc := range []struct {
		kind   RequestKind
		body   string
		status RequestStatus
		msg    string
	}{
		{RequestModule, "other", StatusNotFound, "no such module"},
		{RequestInstall, "", StatusFailed, "install failed: bad module"},
		{RequestRemove, "", StatusFailed, "handler panicked"},
		{RequestKind(200), "", StatusUnsupported, "request kind 200"},
	} {
		_, err := a.Request(ctxT(t), b.Addr(), tc.kind, []byte(tc.body), 1024)
		var re *RequestError
		if !errors.As(err, &re) || re.Status != tc.status || !strings.Contains(re.Msg, tc.msg) {
			t.Errorf("%s: %v, want status %s mentioning %q", tc.kind, err, tc.status, tc.msg)
		}
	}
	// An answer over the caller's limit is refused unread, and the
	// connection still works afterwards.
	if _, err := a.Request(ctxT(t), b.Addr(), RequestModule, []byte("want"), 1<<20); err == nil || !strings.Contains(err.Error(), "exceeds the limit") {
		t.Fatalf("oversized answer: %v, want a limit error", err)
	}
	if err := a.Send(ctxT(t), b.Addr(), testLP(10)); err != nil {
		t.Fatalf("send after the requests: %v", err)
	}
	a.mu.Lock()
	n := len(a.conns)
	a.mu.Unlock()
	if n != 1 {
		t.Errorf("%d connections, want the one connection shared by requests and LPs", n)
	}

	// A member without a request handler says so.
	_, err = b.Request(ctxT(t), a.Addr(), RequestModule, []byte("want"), 1024)
	var re *RequestError
	if !errors.As(err, &re) || re.Status != StatusUnsupported {
		t.Fatalf("request to a member without a handler: %v, want unsupported", err)
	}
}

// A slow handler is not cut off by the stream deadline: the answer's own
// deadline starts when the handler returns.
func TestRequestSlowHandler(t *testing.T) {
	ca := testCA(t)
	a := start(t, ca, "a", nil)
	b := start(t, ca, "b", nil, func(c *Config) {
		c.Timeout = 200 * time.Millisecond
		c.Requests = RequestHandlerFunc(func(ctx context.Context, from string, kind RequestKind, body []byte) ([]byte, error) {
			select {
			case <-time.After(400 * time.Millisecond):
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			return []byte("done"), nil
		})
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if got, err := a.Request(ctx, b.Addr(), RequestInstall, nil, 16); err != nil || string(got) != "done" {
		t.Fatalf("slow request: %q, %v", got, err)
	}
}

// A request that outlives the caller's deadline costs its stream, not the
// connection the peer's LPs travel on.
func TestRequestTimeoutKeepsConnection(t *testing.T) {
	ca := testCA(t)
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	a := start(t, ca, "a", nil)
	b := start(t, ca, "b", newRecorder(), func(c *Config) {
		c.Requests = RequestHandlerFunc(func(ctx context.Context, from string, kind RequestKind, body []byte) ([]byte, error) {
			select {
			case <-release:
			case <-ctx.Done():
			}
			return nil, nil
		})
	})
	if err := a.Send(ctxT(t), b.Addr(), testLP(10)); err != nil {
		t.Fatal(err)
	}
	only := func() *conn {
		a.mu.Lock()
		defer a.mu.Unlock()
		for c := range a.conns {
			return c
		}
		return nil
	}
	first := only()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := a.Request(ctx, b.Addr(), RequestInstall, nil, 16); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("slow request: %v, want context.DeadlineExceeded", err)
	}
	if first == nil || !first.alive() {
		t.Fatal("a timed-out request retired the connection")
	}
	if err := a.Send(ctxT(t), b.Addr(), testLP(10)); err != nil || only() != first {
		t.Fatalf("send after the timed-out request: %v (same connection: %v)", err, only() == first)
	}
}
