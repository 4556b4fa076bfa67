package node

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"sort"
	"time"

	"github.com/tsubame-rt/tsubame/internal/adminapi"
	"github.com/tsubame-rt/tsubame/internal/mesh/cluster"
)

type admin struct {
	srv  *http.Server
	addr string
}

// startAdmin serves the admin API: HTTPS with the node's certificate, and on
// the same port plain HTTP for /healthz and /v1/status (adminGate). The
// module endpoints need the admin token (admin_modules.go); status and
// health need none.
func startAdmin(addr string, n *Node) (*admin, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(n.Status())
	})
	n.adminRoutes(mux)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		if n.run.draining.Load() {
			http.Error(w, "shutting down", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	a := &admin{addr: ln.Addr().String(), srv: &http.Server{
		Handler:           n.adminGate(mux),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      10 * time.Second,
		MaxHeaderBytes:    16 << 10,
		// TLS handshake failures (a client without the CA) are the
		// client's problem: debug level, not the process's stderr.
		ErrorLog: slog.NewLogLogger(n.log.Handler(), slog.LevelDebug),
	}}
	go func() {
		if err := a.srv.Serve(n.adminListener(ln)); err != nil && !errors.Is(err, http.ErrServerClosed) {
			n.log.Error("admin API stopped", "err", err)
		}
	}()
	return a, nil
}

// Status returns what GET /v1/status serves.
func (n *Node) Status() adminapi.Status {
	now := time.Now()
	self := n.localMeta()
	st := adminapi.Status{Node: n.cfg.Name, Time: now}
	me := memberStatus(cluster.Peer{Name: n.cfg.Name, Meta: self, Updated: now}, now, n.cfg.Scheduler.StaleAfter)
	me.Self = true
	me.Components = componentStatus(n.Components()) // also while draining
	me.Running = int(n.run.running.Load())
	me.SentTo = n.run.disp.Sent()
	st.Members = append(st.Members, me)
	for _, p := range n.cl.Members() {
		st.Members = append(st.Members, memberStatus(p, now, n.cfg.Scheduler.StaleAfter))
	}
	n.hot.annotateStatus(&st)
	return st
}

func memberStatus(p cluster.Peer, now time.Time, stale time.Duration) adminapi.MemberStatus {
	m := adminapi.MemberStatus{
		Name: p.Name, Gateway: p.Meta.Gateway, QUIC: p.Meta.QUIC,
		Components: componentStatus(p.Meta.Components),
		Load:       p.Meta.Load, Queue: p.Meta.Queue, Workers: p.Meta.Workers,
		InPerSec: p.Meta.In, OutPerSec: p.Meta.Out,
		ReportAgeMS: -1,
	}
	if !p.Updated.IsZero() {
		age := now.Sub(p.Updated)
		m.ReportAgeMS, m.Fresh = age.Milliseconds(), age <= stale
	}
	return m
}

func componentStatus(cs []cluster.Component) []adminapi.ComponentStatus {
	out := make([]adminapi.ComponentStatus, 0, len(cs))
	for _, c := range cs {
		out = append(out, adminapi.ComponentStatus{Name: c.Name, Hash: c.Hash.Short()})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
