package transport

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"time"
)

// Generic requests: the REQUEST and RESPONSE frames carry exchanges other
// than LP migration (fetching a module by hash, asking a peer to install
// one) over the same connections and streams.
//
// A REQUEST payload is one RequestKind byte and the kind's body. A RESPONSE
// payload is one RequestStatus byte and, for StatusOK, the answer's body;
// for any other status a UTF-8 message (at most 4 KiB). A RESPONSE leaves
// the stream usable, whatever its status.

// RequestKind says what a REQUEST asks for. The transport does not interpret
// bodies: the RequestHandler does.
type RequestKind uint8

// Request kinds. ONLY APPEND: the values are on the wire.
const (
	// RequestModule: body is a 32-byte SHA-256; the answer is the module's
	// bytes, or StatusNotFound.
	RequestModule RequestKind = 1
	// RequestInstall: body is a JSON install order (node package); the
	// answer is a JSON result.
	RequestInstall RequestKind = 2
	// RequestRemove: body is a JSON remove order; the answer is a JSON
	// result.
	RequestRemove RequestKind = 3
	// RequestComponents: empty body; the answer is the JSON list of the
	// components the peer holds, with their load.
	RequestComponents RequestKind = 4
	// RequestBlob: body is a 40-byte blob reference (SHA-256, size as 8
	// little-endian bytes); the answer is the blob's bytes, or
	// StatusNotFound. The requester verifies them (node/blob).
	RequestBlob RequestKind = 5
	// RequestBlobPut: body is the 16-byte ID of the LP the blob belongs
	// to, its deadline (8 bytes, little-endian Unix nanoseconds, 0 none),
	// a 40-byte reference and the blob's bytes; the receiver verifies them
	// against the reference and keeps them for that LP. Empty answer.
	RequestBlobPut RequestKind = 6
)

func (k RequestKind) String() string {
	switch k {
	case RequestModule:
		return "module"
	case RequestInstall:
		return "install"
	case RequestRemove:
		return "remove"
	case RequestComponents:
		return "components"
	case RequestBlob:
		return "blob"
	case RequestBlobPut:
		return "blob put"
	}
	return fmt.Sprintf("request kind %d", uint8(k))
}

// RequestStatus is the first byte of a RESPONSE.
type RequestStatus uint8

// Response statuses. ONLY APPEND: the values are on the wire.
const (
	StatusOK          RequestStatus = 0
	StatusNotFound    RequestStatus = 1 // the thing asked for is not here
	StatusFailed      RequestStatus = 2 // the request was understood and failed; the message says why
	StatusUnsupported RequestStatus = 3 // this member does not serve this kind of request
	StatusForbidden   RequestStatus = 4 // the sender's certificate role may not make this request
)

func (s RequestStatus) String() string {
	switch s {
	case StatusOK:
		return "ok"
	case StatusNotFound:
		return "not found"
	case StatusFailed:
		return "failed"
	case StatusUnsupported:
		return "unsupported"
	case StatusForbidden:
		return "forbidden"
	}
	return fmt.Sprintf("status %d", uint8(s))
}

// RequestError is a RESPONSE with a status other than StatusOK. Handlers
// return it to choose the status; Request returns it (errors.As).
type RequestError struct {
	Status RequestStatus
	Msg    string
}

func (e *RequestError) Error() string {
	if e.Msg == "" {
		return e.Status.String()
	}
	return e.Status.String() + ": " + e.Msg
}

// RequestHandler answers the REQUEST frames peers send.
type RequestHandler interface {
	// HandleRequest answers one request from the peer named from (its
	// certificate's name). body is the handler's to keep. A nil error sends
	// StatusOK with the returned bytes; a *RequestError its status and
	// message; any other error StatusFailed with its text. ctx ends when
	// the requester gives up or the connection closes. Unlike AcceptLP it
	// may take a while (an install compiles a module): the stream's write
	// deadline starts once it returns.
	HandleRequest(ctx context.Context, from string, kind RequestKind, body []byte) ([]byte, error)
}

// RequestHandlerFunc adapts a function to RequestHandler.
type RequestHandlerFunc func(ctx context.Context, from string, kind RequestKind, body []byte) ([]byte, error)

// HandleRequest calls f.
func (f RequestHandlerFunc) HandleRequest(ctx context.Context, from string, kind RequestKind, body []byte) ([]byte, error) {
	return f(ctx, from, kind, body)
}

// answerRequest reads the n-byte payload of a REQUEST frame, runs the
// handler and appends the RESPONSE to out.
func (t *Transport) answerRequest(ctx context.Context, c *conn, r io.Reader, n int, out []byte) []byte {
	if n < 1 {
		return t.errorFrame(c, out, &wireError{ErrBadRequest, "REQUEST without a kind byte"})
	}
	buf, release, err := t.readFrame(c, r, n, ctx.Done())
	defer release()
	if err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			err = &wireError{ErrFrame, fmt.Sprintf("stream ended inside a %d-byte REQUEST frame", n)}
		}
		return t.errorFrame(c, out, err)
	}
	kind := RequestKind(buf[0])
	h := t.cfg.Requests
	if h == nil {
		return appendText(out, frameResponse, byte(StatusUnsupported), t.name+" serves no requests")
	}
	if !allowedRequest(c.role, kind) {
		t.log.Warn("refused a request the peer's certificate role does not allow", "peer", c.peer, "role", c.role, "kind", kind)
		return appendText(out, frameResponse, byte(StatusForbidden), forbidden(c, kind.String()+" requests"))
	}
	ctx = context.WithValue(ctx, roleKey{}, c.role)
	body, err := t.handle(ctx, c, h, kind, buf[1:])
	if err != nil {
		var re *RequestError
		if !errors.As(err, &re) || re.Status == StatusOK {
			re = &RequestError{Status: StatusFailed, Msg: err.Error()}
		}
		return appendText(out, frameResponse, byte(re.Status), re.Msg)
	}
	out = append(out, byte(frameResponse))
	out = binary.AppendUvarint(out, uint64(1+len(body)))
	out = append(out, byte(StatusOK))
	return append(out, body...)
}

// handle runs h, turning a panic into a failed request, as accept does for
// LPs.
func (t *Transport) handle(ctx context.Context, c *conn, h RequestHandler, kind RequestKind, body []byte) (_ []byte, err error) {
	defer func() {
		if v := recover(); v != nil {
			t.log.Error("request handler panicked", "peer", c.peer, "kind", kind, "panic", v)
			err = &RequestError{Status: StatusFailed, Msg: "handler panicked"}
		}
	}()
	return h.HandleRequest(ctx, c.peer, kind, body)
}

// Request sends a REQUEST of kind with body to the member listening at addr
// and returns the body of its StatusOK RESPONSE. A *RequestError carries any
// other status; a *ProtocolError means the peer could not read the request
// (an older peer answers a REQUEST with ERROR "unsupported frame type").
// maxResp bounds the answer's body: a longer one fails the request without
// being read. The exchange may take until ctx's deadline, or Timeout when
// ctx has none.
func (t *Transport) Request(ctx context.Context, addr string, kind RequestKind, body []byte, maxResp int) ([]byte, error) {
	frame := make([]byte, 0, maxHeader+1+len(body))
	frame = append(frame, byte(frameRequest))
	frame = binary.AppendUvarint(frame, uint64(1+len(body)))
	frame = append(frame, byte(kind))
	frame = append(frame, body...)
	ans, err := t.request(ctx, addr, frame, maxResp)
	if err != nil {
		return nil, fmt.Errorf("%s request to %s: %w", kind, addr, err)
	}
	return ans, nil
}

func (t *Transport) request(ctx context.Context, addr string, frame []byte, maxResp int) ([]byte, error) {
	c, err := t.connTo(ctx, addr)
	if err != nil {
		return nil, err
	}
	s, err := t.getStream(ctx, c)
	if err != nil {
		return nil, err
	}
	// The exchange may take until ctx's deadline, however far.
	timeout := t.cfg.Timeout
	if _, ok := ctx.Deadline(); ok {
		timeout = time.Duration(math.MaxInt64)
	}
	stop := s.w.arm(ctx, timeout)
	ans, keep, err := t.requestOn(ctx, c, s, frame, maxResp)
	s.w.disarm(stop) // before the stream goes back to the pool
	if keep {
		t.putStream(c, s)
	} else {
		s.discard()
	}
	return ans, err
}

// requestOn is request's part on a checked-out, armed stream; keep reports
// whether the stream is in step for the next exchange.
func (t *Transport) requestOn(ctx context.Context, c *conn, s *stream, frame []byte, maxResp int) (ans []byte, keep bool, err error) {
	if _, err := s.qs.Write(frame); err != nil {
		return nil, false, t.requestFailed(ctx, c, err)
	}
	typ, n, err := readHeader(s.r, max(maxResp, 0)+1+maxText)
	if err != nil {
		var we *wireError
		if errors.As(err, &we) {
			return nil, false, fmt.Errorf("bad answer from %s: %w", c.peer, err)
		}
		return nil, false, t.requestFailed(ctx, c, err)
	}
	payload, err := readPayload(s.r, n)
	if err != nil {
		return nil, false, t.requestFailed(ctx, c, err)
	}
	return parseAnswer(c.peer, typ, payload, maxResp)
}

// parseAnswer interprets the answer frame to a REQUEST; keep reports
// whether the stream is still in step.
func parseAnswer(peer string, typ frameType, payload []byte, maxResp int) (ans []byte, keep bool, err error) {
	switch {
	case typ == frameResponse && len(payload) >= 1:
		status := RequestStatus(payload[0])
		if status != StatusOK {
			return nil, true, &RequestError{Status: status, Msg: string(payload[1:])}
		}
		if len(payload)-1 > maxResp {
			return nil, true, fmt.Errorf("answer from %s of %d bytes exceeds the limit of %d", peer, len(payload)-1, maxResp)
		}
		return payload[1:], true, nil
	case typ == frameError && len(payload) >= 1:
		return nil, false, &ProtocolError{Code: ErrorCode(payload[0]), Msg: string(payload[1:])}
	}
	return nil, false, fmt.Errorf("bad answer from %s: unexpected %s frame of %d bytes", peer, typ, len(payload))
}

// requestFailed classifies a failed request exchange. Unlike a migration's,
// a request's deadline says little about the peer (an install order
// compiles for a while; a status probe has a tight budget), so a request
// that runs out of time drops its stream, never the connection the peer's
// LPs travel on.
func (t *Transport) requestFailed(ctx context.Context, c *conn, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%s: %w", c.peer, context.Cause(ctx))
	}
	if pastCallerDeadline(ctx, err) {
		return fmt.Errorf("%s: %w", c.peer, context.DeadlineExceeded)
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return fmt.Errorf("%s did not answer within the deadline: %w", c.peer, err)
	}
	return t.streamFailed(ctx, c, err)
}
