package obs

import (
	"embed"
	"io/fs"
	"net/http"
	"sort"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

//go:embed ui
var uiFiles embed.FS

// UIMember is one cluster member as the dashboard draws it.
type UIMember struct {
	Name       string        `json:"name"`
	Gateway    bool          `json:"gateway,omitempty"`
	Load       float64       `json:"load"`
	Queue      int           `json:"queue"`
	Workers    int           `json:"workers"`
	Fresh      bool          `json:"fresh"`
	Components []UIComponent `json:"components"`
}

// UIComponent is a component a member holds and its version (short hash).
type UIComponent struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

// UIRoute is one route's request totals; the page turns them into rates.
// Errors counts answers with a 5xx status.
type UIRoute struct {
	Route    string             `json:"route"`
	Requests float64            `json:"requests"`
	Errors   float64            `json:"errors"`
	Codes    map[string]float64 `json:"codes"`
}

// UIState is the body of GET /ui/api/state.
type UIState struct {
	Time   time.Time  `json:"time"`
	Origin string     `json:"origin"`
	Nodes  []UIMember `json:"nodes"`
	Routes []UIRoute  `json:"routes"`
}

// UI is the live dashboard of the cluster as one gateway (or a node
// embedding one) sees it: plain HTML and JS embedded in the binary, which
// poll GET /ui/api/state and the journey ring.
type UI struct {
	// Origin names the gateway the dashboard runs on.
	Origin string
	// Members lists the live members with their load and components.
	Members func() []UIMember
	// Gatherer holds tsubame_http_requests_total (the gateway's registry).
	Gatherer prometheus.Gatherer
	// Ring is the gateway's journey ring.
	Ring *Ring
}

// Handler serves the dashboard under /ui/ (mount it at "/ui/").
func (u *UI) Handler() http.Handler {
	static, _ := fs.Sub(uiFiles, "ui")
	mux := http.NewServeMux()
	mux.Handle("GET /ui/", http.StripPrefix("/ui/", noStore(http.FileServerFS(static))))
	mux.HandleFunc("GET /ui/api/state", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, u.State()) })
	if u.Ring != nil {
		u.Ring.Routes(mux, "/ui/api")
	}
	return securityHeaders(mux)
}

// State is what GET /ui/api/state serves.
func (u *UI) State() UIState {
	st := UIState{Time: time.Now(), Origin: u.Origin, Nodes: []UIMember{}, Routes: []UIRoute{}}
	if u.Members != nil {
		st.Nodes = append(st.Nodes, u.Members()...)
	}
	sort.Slice(st.Nodes, func(i, j int) bool { return st.Nodes[i].Name < st.Nodes[j].Name })
	if u.Gatherer != nil {
		st.Routes = routeTotals(u.Gatherer)
	}
	return st
}

func routeTotals(g prometheus.Gatherer) []UIRoute {
	fams, err := g.Gather()
	if err != nil && len(fams) == 0 {
		return []UIRoute{}
	}
	by := map[string]*UIRoute{}
	for _, f := range fams {
		if f.GetName() != Namespace+"_http_requests_total" {
			continue
		}
		for _, m := range f.Metric {
			var route, code string
			for _, l := range m.Label {
				switch l.GetName() {
				case "route":
					route = l.GetValue()
				case "code":
					code = l.GetValue()
				}
			}
			r := by[route]
			if r == nil {
				r = &UIRoute{Route: route, Codes: map[string]float64{}}
				by[route] = r
			}
			v := m.GetCounter().GetValue()
			r.Requests += v
			r.Codes[code] += v
			if c, _ := strconv.Atoi(code); c >= 500 {
				r.Errors += v
			}
		}
	}
	out := make([]UIRoute, 0, len(by))
	for _, r := range by {
		out = append(out, *r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Route < out[j].Route })
	return out
}

func noStore(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache")
		h.ServeHTTP(w, r)
	})
}

// securityHeaders pins the page to its own origin: no script, style or
// connection anywhere else, which also proves it needs nothing outside.
func securityHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Referrer-Policy", "no-referrer")
		h.ServeHTTP(w, r)
	})
}
