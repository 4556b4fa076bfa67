package node

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/tsubame-rt/tsubame/abi"
	"github.com/tsubame-rt/tsubame/internal/adminapi"
	"github.com/tsubame-rt/tsubame/internal/mesh/transport"
	"github.com/tsubame-rt/tsubame/wasmhost"
)

// The admin API's module endpoints (docs/install.md):
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

// adminGate keeps plain HTTP to the endpoints that may be read without TLS.
func (n *Node) adminGate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS == nil && !(n.cfg.AdminPlain && r.Method == http.MethodGet && (r.URL.Path == "/healthz" || r.URL.Path == "/v1/status")) {
			writeJSON(w, http.StatusForbidden, adminapi.Error{Error: "this endpoint needs HTTPS: use https://" + r.Host +
				" and verify the node's certificate against the cluster CA (tsubame: --ca)"})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// adminRoutes adds the module endpoints to the admin mux.
func (n *Node) adminRoutes(mux *http.ServeMux) {
	h := n.hot
	mux.HandleFunc("PUT /v1/components/{name}", h.auth(h.handleInstall))
	mux.HandleFunc("DELETE /v1/components/{name}", h.auth(h.handleRemove))
	mux.HandleFunc("GET /v1/components", h.auth(h.handleList))
}

// auth requires the admin bearer token (internal/adminapi: compared in
// constant time, never logged); a refusal is logged with who asked for what.
func (h *hot) auth(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		refuse := func(status int, why string) {
			h.n.log.Warn("admin request refused", "why", why, "remote", r.RemoteAddr, "method", r.Method, "path", r.URL.Path)
			if status == http.StatusUnauthorized {
				w.Header().Set("WWW-Authenticate", adminapi.Challenge)
			}
			writeJSON(w, status, adminapi.Error{Error: why})
		}
		if h.token == nil {
			refuse(http.StatusForbidden, "the module endpoints are off: this node has no admin_token_file")
			return
		}
		if err := h.token.Check(r); err != nil {
			refuse(http.StatusUnauthorized, err.Error())
			return
		}
		next(w, r)
	}
}

// uploadTime bounds reading an upload and installing it everywhere.
const uploadTime = 5 * time.Minute

// targetsOf reads ?nodes=a,b and ?all=1.
func (h *hot) targetsOf(r *http.Request) ([]string, error) {
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
	return h.targets(names, all)
}

func (h *hot) handleInstall(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if !abi.ValidName(name) {
		writeJSON(w, http.StatusBadRequest, adminapi.Error{Error: fmt.Sprintf("%q is not a valid component name (1-64 ASCII letters, digits, '_', '-', '.', starting with a letter)", name)})
		return
	}
	targets, err := h.targetsOf(r)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, adminapi.Error{Error: err.Error()})
		return
	}
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Now().Add(uploadTime))
	_ = rc.SetWriteDeadline(time.Now().Add(uploadTime))
	tooLarge := func(n int64) {
		h.n.log.Warn("module refused", "component", name, "rule", "size", "bytes", n, "max", h.maxBytes, "remote", r.RemoteAddr)
		writeJSON(w, http.StatusRequestEntityTooLarge, adminapi.Error{Rule: "size",
			Error: fmt.Sprintf("module refused (size): %d bytes exceeds modules.max_bytes (%d)", n, h.maxBytes)})
	}
	if r.ContentLength > int64(h.maxBytes) {
		tooLarge(r.ContentLength)
		return
	}
	wasm, err := io.ReadAll(http.MaxBytesReader(w, r.Body, int64(h.maxBytes)))
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
	hash, results, err := h.upload(r.Context(), name, wasm, targets)
	if err != nil {
		var me *wasmhost.ModuleError
		if errors.As(err, &me) {
			h.n.log.Warn("module refused", "component", name, "rule", me.Rule, "err", me.Err, "remote", r.RemoteAddr)
			writeJSON(w, http.StatusUnprocessableEntity, adminapi.Error{Error: err.Error(), Rule: me.Rule})
			return
		}
		writeJSON(w, http.StatusInternalServerError, adminapi.Error{Error: err.Error()})
		return
	}
	h.n.log.Info("module uploaded", "component", name, "hash", hash.Short(), "bytes", len(wasm), "targets", targets, "remote", r.RemoteAddr)
	writeJSON(w, resultStatus(results), adminapi.InstallResponse{Name: name, Hash: hash.String(), Size: len(wasm), Results: results})
}

func (h *hot) handleRemove(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	targets, err := h.targetsOf(r)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, adminapi.Error{Error: err.Error()})
		return
	}
	results := h.spread(r.Context(), targets, name, nil, installSource{})
	writeJSON(w, resultStatus(results), adminapi.InstallResponse{Name: name, Results: results})
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

func (h *hot) handleList(w http.ResponseWriter, r *http.Request) {
	out := adminapi.ComponentsList{Nodes: []adminapi.ComponentsReport{h.components()}}
	if q := r.URL.Query().Get("all"); q == "1" || q == "true" {
		reps, errs := h.peerComponents(r.Context(), listTimeout)
		out.Nodes = append(out.Nodes, reps...)
		if len(errs) > 0 {
			out.Errors = errs
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// peerComponents asks every live node for its components, in parallel.
func (h *hot) peerComponents(ctx context.Context, timeout time.Duration) ([]adminapi.ComponentsReport, map[string]string) {
	var (
		mu   sync.Mutex
		reps []adminapi.ComponentsReport
		errs = map[string]string{}
		wg   sync.WaitGroup
	)
	for _, m := range h.n.cl.Members() {
		if m.Meta.Gateway {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			b, err := h.n.tr.Request(ctx, m.Meta.QUIC, transport.RequestComponents, nil, 4<<20)
			var rep adminapi.ComponentsReport
			if err == nil {
				err = json.Unmarshal(b, &rep)
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs[m.Name] = err.Error()
				return
			}
			reps = append(reps, rep)
		}()
	}
	wg.Wait()
	sort.Slice(reps, func(i, j int) bool { return reps[i].Node < reps[j].Node })
	return reps, errs
}

// components reports what this node holds and the versions it retains.
func (h *hot) components() adminapi.ComponentsReport {
	byTarget, refs := h.queued()
	h.mu.Lock()
	pin := h.pinned()
	manifest := make(map[string]componentOrigin, len(h.manifest))
	for name, e := range h.manifest {
		if !e.Removed {
			manifest[name] = componentOrigin{e.Source, e.Auto, e.By, e.InstalledAt}
		}
	}
	h.mu.Unlock()
	rep := adminapi.ComponentsReport{Node: h.n.cfg.Name, Components: []adminapi.ComponentInfo{}}
	for _, c := range h.n.eng.Components() {
		info := adminapi.ComponentInfo{Name: c.Name, Hash: c.Hash.String(), Version: c.Hash.Short(), Size: c.Size,
			Source: sourceConfig, Kinds: map[string]uint64{}, Queued: byTarget[c.Name]}
		if o, ok := manifest[c.Name]; ok {
			at := o.at
			info.Source, info.Auto, info.By, info.InstalledAt = o.source, o.auto, o.by, &at
		}
		if x, ok := h.stats.Load(c.Name); ok {
			s := x.(*compStats)
			info.Steps = s.steps.Load()
			if t := s.last.Load(); t != 0 {
				last := time.Unix(0, t).UTC()
				info.LastStep = &last
			}
			info.Kinds = s.kindCounts()
			s.mu.Lock()
			info.StepsPerSec, info.Load = s.rate, s.load
			s.mu.Unlock()
		}
		rep.Components = append(rep.Components, info)
	}
	for _, hash := range h.vers.loadedSet() {
		if pin[hash] {
			continue
		}
		rep.Retained = append(rep.Retained, adminapi.RetainedVersion{Hash: hash.String(),
			KeepUntil: time.Unix(0, h.vers.untilOf(hash)).UTC(), Queued: refs[hash]})
	}
	sort.Slice(rep.Retained, func(i, j int) bool { return rep.Retained[i].Hash < rep.Retained[j].Hash })
	return rep
}

// componentOrigin is the manifest's word on how a component got here.
type componentOrigin struct {
	source string
	auto   bool
	by     string
	at     time.Time
}

// statusBudget bounds how long /v1/status waits for peers to say how they
// got their components.
const statusBudget = 300 * time.Millisecond

// annotateStatus adds to st how each member got its components (auto-grow
// installs and when) and the auto-installs this node decided. A member that
// does not answer within statusBudget is shown without it.
func (h *hot) annotateStatus(st *adminapi.Status) {
	if h == nil || len(st.Members) == 0 {
		return
	}
	st.Autogrow = h.grow.History()
	byNode := map[string]adminapi.ComponentsReport{h.n.cfg.Name: h.components()}
	for _, rep := range h.peerReports() {
		byNode[rep.Node] = rep
	}
	for i := range st.Members {
		rep, ok := byNode[st.Members[i].Name]
		if !ok {
			continue
		}
		for j := range st.Members[i].Components {
			c := &st.Members[i].Components[j]
			for _, info := range rep.Components {
				if info.Name == c.Name {
					c.Source, c.Auto, c.InstalledAt = info.Source, info.Auto, info.InstalledAt
				}
			}
		}
	}
}

// statusCacheFor bounds how often status asks peers: a dashboard polling
// status many times a second costs the peers one request per this period.
const statusCacheFor = 500 * time.Millisecond

// peerReports returns the peers' component reports for status, asking
// them at most once per statusCacheFor.
func (h *hot) peerReports() []adminapi.ComponentsReport {
	if h.n.cl == nil || h.n.tr == nil {
		return nil
	}
	h.statusMu.Lock()
	defer h.statusMu.Unlock()
	if time.Since(h.statusAt) < statusCacheFor {
		return h.statusReps
	}
	ctx, cancel := context.WithTimeout(context.Background(), statusBudget)
	defer cancel()
	h.statusReps, _ = h.peerComponents(ctx, statusBudget)
	h.statusAt = time.Now()
	return h.statusReps
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

func (n *Node) adminListener(ln net.Listener) net.Listener {
	l := &sniffListener{Listener: ln, tls: n.hot.adminTLS, conns: make(chan net.Conn), done: make(chan struct{})}
	go l.acceptLoop()
	return l
}

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
