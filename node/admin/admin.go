// Package admin serves a node's admin API: HTTPS with the node's cluster
// certificate and, on the same port, plain HTTP for /healthz and /v1/status
// when admin_plain allows it (a listener that sniffs the first byte). The
// module endpoints need the admin bearer token; status and health need none.
//
// The package is only the HTTP face: it never installs, lists or measures
// anything itself. Node answers status and health, Modules the module
// endpoints (node/install backs it).
package admin

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/tsubame-rt/tsubame/abi"
	"github.com/tsubame-rt/tsubame/internal/adminapi"
	"github.com/tsubame-rt/tsubame/lp"
	"github.com/tsubame-rt/tsubame/wasmhost"
)

// Node is what status and health read: node.Node.
type Node interface {
	Status() adminapi.Status
	// Draining reports whether the node is shutting down (health 503).
	Draining() bool
}

// Modules is hot install as the module endpoints use it: install.Manager.
type Modules interface {
	// Targets resolves ?nodes= and ?all= to member names.
	Targets(names []string, all bool) ([]string, error)
	// Upload validates wasm and installs it as component name on targets.
	Upload(ctx context.Context, name string, wasm []byte, targets []string) (lp.Hash, []adminapi.InstallResult, error)
	// Remove removes component name from targets.
	Remove(ctx context.Context, targets []string, name string) []adminapi.InstallResult
	// Components is this node's report; PeerComponents the others'.
	Components() adminapi.ComponentsReport
	PeerComponents(ctx context.Context, timeout time.Duration) ([]adminapi.ComponentsReport, map[string]string)
	// MaxBytes bounds one module.
	MaxBytes() int
}

// Config is how the admin API is served.
type Config struct {
	// Addr is the TCP address to listen on.
	Addr string
	// TLS is the server's TLS configuration (adminapi.ServerTLS of the
	// node's cluster certificate).
	TLS *tls.Config
	// Token is the admin bearer token; nil turns the module endpoints off.
	Token *adminapi.Token
	// Plain lets /healthz, /v1/status, /metrics and the journeys be read
	// over plain HTTP.
	Plain bool
	// KV backs POST /v1/kv/{bucket} (kv.Store); nil turns it off.
	KV     KV
	Logger *slog.Logger
	// Observe, if set, adds GET /metrics and the journey API
	// (/v1/journeys) to the mux: read-only, no token, like status.
	Observe func(mux *http.ServeMux)
}

// Server is a running admin API.
type Server struct {
	cfg  Config
	node Node
	mods Modules
	log  *slog.Logger
	srv  *http.Server
	addr string
}

// Start listens on c.Addr and serves the admin API until Shutdown.
func Start(c Config, node Node, mods Modules) (*Server, error) {
	ln, err := net.Listen("tcp", c.Addr)
	if err != nil {
		return nil, err
	}
	a := &Server{cfg: c, node: node, mods: mods, log: c.Logger, addr: ln.Addr().String()}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(node.Status())
	})
	mux.HandleFunc("PUT /v1/components/{name}", a.auth(a.handleInstall))
	mux.HandleFunc("DELETE /v1/components/{name}", a.auth(a.handleRemove))
	mux.HandleFunc("GET /v1/components", a.auth(a.handleList))
	mux.HandleFunc("POST /v1/kv/{bucket}", a.auth(a.handleKV))
	if c.Observe != nil {
		c.Observe(mux)
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		if node.Draining() {
			http.Error(w, "shutting down", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	a.srv = &http.Server{
		Handler:           a.gate(mux),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      10 * time.Second,
		MaxHeaderBytes:    16 << 10,
		// TLS handshake failures (a client without the CA) are the
		// client's problem: debug level, not the process's stderr.
		ErrorLog: slog.NewLogLogger(a.log.Handler(), slog.LevelDebug),
	}
	l := &sniffListener{Listener: ln, tls: c.TLS, conns: make(chan net.Conn), done: make(chan struct{})}
	go l.acceptLoop()
	go func() {
		if err := a.srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.log.Error("admin API stopped", "err", err)
		}
	}()
	return a, nil
}

// Addr is the address the API listens on.
func (a *Server) Addr() string { return a.addr }

// Shutdown stops the server, waiting for requests in flight until ctx ends.
func (a *Server) Shutdown(ctx context.Context) error { return a.srv.Shutdown(ctx) }

// The module endpoints (docs/install.md):
//
//	PUT    /v1/components/{name}[?nodes=a,b|?all=1]   body: the module
//	DELETE /v1/components/{name}[?nodes=a,b|?all=1]
//	GET    /v1/components[?all=1]
//
// They are served over HTTPS only, with the node's cluster certificate
// (clients verify it against the cluster CA), and need the bearer token of
// admin_token_file; without one configured they are off. The same port also
// answers plain HTTP, for /healthz and /v1/status only (admin_plain).

var writeJSON = adminapi.WriteJSON

// plainPath reports whether path may be read over plain HTTP when Plain is
// on: health, status, metrics and journeys, which a prober or a Prometheus
// server without the cluster CA reads.
func plainPath(path string) bool {
	return path == "/healthz" || path == "/v1/status" || path == "/metrics" ||
		path == "/v1/journeys" || strings.HasPrefix(path, "/v1/journeys/")
}

// gate keeps plain HTTP to the endpoints that may be read without TLS.
func (a *Server) gate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS == nil && !(a.cfg.Plain && r.Method == http.MethodGet && plainPath(r.URL.Path)) {
			writeJSON(w, http.StatusForbidden, adminapi.Error{Error: "this endpoint needs HTTPS: use https://" + r.Host +
				" and verify the node's certificate against the cluster CA (tsubame: --ca)"})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// auth requires the admin bearer token (internal/adminapi: compared in
// constant time, never logged); a refusal is logged with who asked for what.
func (a *Server) auth(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		refuse := func(status int, why string) {
			a.log.Warn("admin request refused", "why", why, "remote", r.RemoteAddr, "method", r.Method, "path", r.URL.Path)
			if status == http.StatusUnauthorized {
				w.Header().Set("WWW-Authenticate", adminapi.Challenge)
			}
			writeJSON(w, status, adminapi.Error{Error: why})
		}
		if a.cfg.Token == nil {
			refuse(http.StatusForbidden, "the module endpoints are off: this node has no admin_token_file")
			return
		}
		if err := a.cfg.Token.Check(r); err != nil {
			refuse(http.StatusUnauthorized, err.Error())
			return
		}
		if r.Method != http.MethodGet {
			// Who ordered it: the admin token's holder, from this address.
			a.log.Info("admin action", "by", "admin token", "remote", r.RemoteAddr, "method", r.Method, "path", r.URL.Path, "query", r.URL.RawQuery)
		}
		next(w, r)
	}
}

// uploadTime bounds reading an upload and installing it everywhere.
const uploadTime = 5 * time.Minute

// targetsOf reads ?nodes=a,b and ?all=1.
func (a *Server) targetsOf(r *http.Request) ([]string, error) {
	q := r.URL.Query()
	var names []string
	for _, s := range strings.Split(q.Get("nodes"), ",") {
		if s = strings.TrimSpace(s); s != "" {
			names = append(names, s)
		}
	}
	all := q.Get("all") == "1" || q.Get("all") == "true"
	if all && len(names) > 0 {
		return nil, errors.New("nodes and all exclude each other")
	}
	return a.mods.Targets(names, all)
}

func (a *Server) handleInstall(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if !abi.ValidName(name) {
		writeJSON(w, http.StatusBadRequest, adminapi.Error{Error: fmt.Sprintf("%q is not a valid component name (1-64 ASCII letters, digits, '_', '-', '.', starting with a letter)", name)})
		return
	}
	targets, err := a.targetsOf(r)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, adminapi.Error{Error: err.Error()})
		return
	}
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Now().Add(uploadTime))
	_ = rc.SetWriteDeadline(time.Now().Add(uploadTime))
	tooLarge := func(n int64) {
		a.log.Warn("module refused", "component", name, "rule", "size", "bytes", n, "max", a.mods.MaxBytes(), "remote", r.RemoteAddr)
		writeJSON(w, http.StatusRequestEntityTooLarge, adminapi.Error{Rule: "size",
			Error: fmt.Sprintf("module refused (size): %d bytes exceeds modules.max_bytes (%d)", n, a.mods.MaxBytes())})
	}
	if r.ContentLength > int64(a.mods.MaxBytes()) {
		tooLarge(r.ContentLength)
		return
	}
	wasm, err := io.ReadAll(http.MaxBytesReader(w, r.Body, int64(a.mods.MaxBytes())))
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		tooLarge(mbe.Limit + 1)
		return
	case err != nil:
		writeJSON(w, http.StatusBadRequest, adminapi.Error{Error: "reading the module: " + err.Error()})
		return
	case len(wasm) == 0:
		writeJSON(w, http.StatusBadRequest, adminapi.Error{Error: "empty body: send the module's bytes"})
		return
	}
	hash, results, err := a.mods.Upload(r.Context(), name, wasm, targets)
	if err != nil {
		var me *wasmhost.ModuleError
		if errors.As(err, &me) {
			a.log.Warn("module refused", "component", name, "rule", me.Rule, "err", me.Err, "remote", r.RemoteAddr)
			writeJSON(w, http.StatusUnprocessableEntity, adminapi.Error{Error: err.Error(), Rule: me.Rule})
			return
		}
		writeJSON(w, http.StatusInternalServerError, adminapi.Error{Error: err.Error()})
		return
	}
	a.log.Info("module uploaded", "component", name, "hash", hash.Short(), "bytes", len(wasm), "targets", targets, "remote", r.RemoteAddr)
	writeJSON(w, resultStatus(results), adminapi.InstallResponse{Name: name, Hash: hash.String(), Size: len(wasm), Results: results})
}

func (a *Server) handleRemove(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	targets, err := a.targetsOf(r)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, adminapi.Error{Error: err.Error()})
		return
	}
	results := a.mods.Remove(r.Context(), targets, name)
	// A node that does not hold the component already is what a removal
	// wants; only when none held it is the name likely wrong (404).
	absent := 0
	for i := range results {
		if !results[i].OK && strings.Contains(results[i].Error, "does not hold") {
			absent++
			results[i].OK, results[i].Absent, results[i].Error = true, true, ""
		}
	}
	status := resultStatus(results)
	if absent == len(results) {
		status = http.StatusNotFound
	}
	writeJSON(w, status, adminapi.InstallResponse{Name: name, Results: results})
}

// resultStatus is 200 when every node succeeded, 404 when none held the
// component to remove, 502 otherwise.
func resultStatus(results []adminapi.InstallResult) int {
	failed, missing := 0, 0
	for _, res := range results {
		if !res.OK {
			failed++
			if strings.Contains(res.Error, "does not hold") {
				missing++
			}
		}
	}
	switch {
	case failed == 0:
		return http.StatusOK
	case missing == len(results):
		return http.StatusNotFound
	}
	return http.StatusBadGateway
}

// listTimeout bounds each peer's answer to ?all=1.
const listTimeout = 2 * time.Second

func (a *Server) handleList(w http.ResponseWriter, r *http.Request) {
	out := adminapi.ComponentsList{Nodes: []adminapi.ComponentsReport{a.mods.Components()}}
	if q := r.URL.Query().Get("all"); q == "1" || q == "true" {
		reps, errs := a.mods.PeerComponents(r.Context(), listTimeout)
		out.Nodes = append(out.Nodes, reps...)
		if len(errs) > 0 {
			out.Errors = errs
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// sniffListener serves TLS and plain HTTP on one port: a connection whose
// first byte is a TLS handshake record (0x16) is wrapped in tls.Server, any
// other is passed on as it is. net/http then sets Request.TLS only for the
// former, which is what the gate and the handlers check.
type sniffListener struct {
	net.Listener
	tls   *tls.Config
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
	err   error
}

// sniffTimeout bounds how long a client may take to send its first byte.
const sniffTimeout = 5 * time.Second

func (l *sniffListener) acceptLoop() {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			// err is set only before done closes, so Accept reads it after
			// <-done without a race; after Close it stays nil (ErrClosed).
			l.once.Do(func() { l.err = err; close(l.done) })
			return
		}
		go l.classify(c)
	}
}

func (l *sniffListener) classify(c net.Conn) {
	_ = c.SetReadDeadline(time.Now().Add(sniffTimeout))
	br := bufio.NewReader(c)
	first, err := br.Peek(1)
	if err != nil {
		c.Close()
		return
	}
	_ = c.SetReadDeadline(time.Time{})
	var out net.Conn = &peekedConn{Conn: c, r: br}
	if first[0] == 0x16 {
		out = tls.Server(out, l.tls)
	}
	select {
	case l.conns <- out:
	case <-l.done:
		c.Close()
	}
}

func (l *sniffListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		if l.err != nil {
			return nil, l.err
		}
		return nil, net.ErrClosed
	}
}

func (l *sniffListener) Close() error {
	err := l.Listener.Close()
	l.once.Do(func() { close(l.done) })
	return err
}

// peekedConn reads what classify peeked before the rest of the connection.
type peekedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *peekedConn) Read(b []byte) (int, error) { return c.r.Read(b) }
