package gateway

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"sync"
)

// net/http serves an HTTP/1.1 request carrying both Content-Length and
// Transfer-Encoding by the chunked framing, as RFC 9112 §6.3 allows, but
// drops the Content-Length header before a handler sees it and keeps the
// connection open, where the RFC says the server MUST close it after
// responding (the pair is the classic request-smuggling shape). framingConn
// watches the bytes a plain-TCP connection reads for both header names, so
// the handler can answer with "Connection: close".
//
// A match inside a body only closes a connection that could have been kept
// (harmless); headers read ahead with a pipelined request are seen by the
// request before them, which then closes, so the pipelined one is never
// served on that connection. HTTPS is not watched (net/http needs the
// *tls.Conn itself to negotiate HTTP/2); docs/security.md says so.
type framingConn struct {
	net.Conn
	mu     sync.Mutex
	tail   []byte // the end of the last read, for a name split across reads
	cl, te bool
}

var (
	hdrContentLength    = []byte("\ncontent-length:")
	hdrTransferEncoding = []byte("\ntransfer-encoding:")
)

func (c *framingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.mu.Lock()
		buf := append(c.tail, bytes.ToLower(p[:n])...)
		c.cl = c.cl || bytes.Contains(buf, hdrContentLength)
		c.te = c.te || bytes.Contains(buf, hdrTransferEncoding)
		keep := min(len(buf), len(hdrTransferEncoding))
		c.tail = append(c.tail[:0], buf[len(buf)-keep:]...)
		c.mu.Unlock()
	}
	return n, err
}

// both reports whether both names were read since the last reset.
func (c *framingConn) both() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cl && c.te
}

func (c *framingConn) reset() {
	c.mu.Lock()
	c.cl, c.te = false, false
	c.mu.Unlock()
}

type framingListener struct{ net.Listener }

func (l framingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &framingConn{Conn: c}, nil
}

type framingKey struct{}

// framingContext puts a watched connection into its requests' context.
func framingContext(ctx context.Context, c net.Conn) context.Context {
	if fc, ok := c.(*framingConn); ok {
		return context.WithValue(ctx, framingKey{}, fc)
	}
	return ctx
}

// closeAmbiguousFraming wraps h: an HTTP/1.x request that came with both
// Content-Length and Transfer-Encoding is answered with Connection: close.
func closeAmbiguousFraming(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fc, ok := r.Context().Value(framingKey{}).(*framingConn)
		if !ok || r.ProtoMajor != 1 {
			h.ServeHTTP(w, r)
			return
		}
		if fc.both() {
			w.Header().Set("Connection", "close")
		}
		defer fc.reset()
		h.ServeHTTP(w, r)
	})
}
