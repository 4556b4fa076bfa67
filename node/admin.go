package node

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"sort"
	"time"

	"github.com/tsubame-rt/tsubame/internal/mesh/cluster"
)

// Status is the body of GET /v1/status: this node and its view of every live
// member. `tsubame status` renders it.
type Status struct {
	Node string    `json:"node"`
	Time time.Time `json:"time"`
	// Members lists this node first, then the others by name.
	Members []MemberStatus `json:"members"`
	// Autogrow lists the auto-grow actions this node took, oldest first.
	Autogrow []AutogrowEvent `json:"autogrow,omitempty"`
}

// MemberStatus is one member as the answering node sees it.
type MemberStatus struct {
	Name       string            `json:"name"`
	Self       bool              `json:"self,omitempty"`
	Gateway    bool              `json:"gateway,omitempty"`
	QUIC       string            `json:"quic"`
	Components []ComponentStatus `json:"components"`
	Load       float64           `json:"load"`
	Queue      int               `json:"queue"`
	Workers    int               `json:"workers"`
	InPerSec   float64           `json:"in_per_sec"`
	OutPerSec  float64           `json:"out_per_sec"`
	// ReportAgeMS is how old the member's last load report is; Fresh says
	// whether it is recent enough for the scheduler to pick the member.
	ReportAgeMS int64 `json:"report_age_ms"`
	Fresh       bool  `json:"fresh"`
	// Running and SentTo are only known for the answering node: steps
	// running now, and LPs it has sent to each peer since it started.
	Running int               `json:"running,omitempty"`
	SentTo  map[string]uint64 `json:"sent_to,omitempty"`
}

// ComponentStatus is a component and the short hash of its module, and, when
// the member says, how it got it: Source "config", "upload", "peer" or
// "auto" (auto-grow), and when.
type ComponentStatus struct {
	Name        string     `json:"name"`
	Hash        string     `json:"hash"`
	Source      string     `json:"source,omitempty"`
	Auto        bool       `json:"auto,omitempty"`
	InstalledAt *time.Time `json:"installed_at,omitempty"`
}

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
func (n *Node) Status() Status {
	now := time.Now()
	self := n.localMeta()
	st := Status{Node: n.cfg.Name, Time: now}
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

func memberStatus(p cluster.Peer, now time.Time, stale time.Duration) MemberStatus {
	m := MemberStatus{
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

func componentStatus(cs []cluster.Component) []ComponentStatus {
	out := make([]ComponentStatus, 0, len(cs))
	for _, c := range cs {
		out = append(out, ComponentStatus{Name: c.Name, Hash: c.Hash.Short()})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
