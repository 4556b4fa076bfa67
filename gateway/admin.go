package gateway

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tsubame-rt/tsubame/abi"
	"github.com/tsubame-rt/tsubame/internal/adminapi"
	"github.com/tsubame-rt/tsubame/lp"
)

// The gateway's admin API (docs/install.md), on its own listener, HTTPS
// with the gateway's cluster certificate, every endpoint behind the bearer
// token of [admin] token_file; off unless token_file is set:
//
//	GET    /v1/routes                       the live route table
//	POST   /v1/routes                       add a route (JSON, a [[route]] table's keys)
//	DELETE /v1/routes?path=P[&method=M]     remove a route
//	POST   /v1/call/{component}/{kind}      run any component; body: the input
//
// Route changes take effect at once and last until the gateway restarts;
// the TOML file stays the gateway's configuration at start.

// AdminConfig is the [admin] table.
type AdminConfig struct {
	// Listen is the admin API's TCP address (HTTPS).
	Listen string `toml:"listen"`
	// TokenFile holds the bearer token every admin request needs; "" turns
	// the admin API off.
	TokenFile string `toml:"token_file"`
}

// defaultAdminListen is next to a node's default admin port.
const defaultAdminListen = "127.0.0.1:7481"

func (a AdminConfig) validate(bad func(key, format string, args ...any)) {
	if a.TokenFile == "" {
		return
	}
	if _, _, err := net.SplitHostPort(a.Listen); err != nil {
		bad("admin.listen", "%q is not host:port: %v", a.Listen, err)
	}
}

// Route sources in GET /v1/routes.
const (
	routeFromConfig = "config"
	routeFromAdmin  = "admin"
)

// RouteInfo is one route of the live table.
type RouteInfo struct {
	Route
	Source string `json:"source"`
}

// MarshalJSON spells the route with its TOML key names.
func (ri RouteInfo) MarshalJSON() ([]byte, error) {
	return json.Marshal(routeJSON{ri.Method, ri.Path, ri.Component, ri.Kind, ri.Input, ri.Output, ri.ContentType, ri.Headers, ri.Source})
}

// UnmarshalJSON reads what MarshalJSON writes.
func (ri *RouteInfo) UnmarshalJSON(b []byte) error {
	var j routeJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*ri = RouteInfo{Route{j.Method, j.Path, j.Component, j.Kind, j.Input, j.Output, j.ContentType, j.Headers}, j.Source}
	return nil
}

// routeJSON is a Route with its TOML key names, as the admin API reads and
// writes it.
type routeJSON struct {
	Method      string   `json:"method,omitempty"`
	Path        string   `json:"path"`
	Component   string   `json:"component"`
	Kind        string   `json:"kind"`
	Input       string   `json:"input,omitempty"`
	Output      string   `json:"output,omitempty"`
	ContentType string   `json:"content_type,omitempty"`
	Headers     []string `json:"headers,omitempty"`
	Source      string   `json:"source,omitempty"`
}

// routeTable is the live route table: the routes and the ServeMux built
// from them, swapped whole on every change (a ServeMux cannot unregister a
// pattern), so requests never see a half-changed table.
type routeTable struct {
	mu     sync.Mutex // serialises changes
	routes []RouteInfo
	mux    atomic.Pointer[http.ServeMux]
}

// buildMux compiles routes into a ServeMux with the health check.
func (g *Gateway) buildMux(routes []RouteInfo) (*http.ServeMux, error) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+healthPath, g.health)
	for i, r := range routes {
		rt, err := compileRoute(i, r.Route)
		if err != nil {
			return nil, err
		}
		if err := handle(mux, rt.pattern, g.serveRoute(rt)); err != nil {
			return nil, fmt.Errorf("route %d (%s): %w", i+1, rt.pattern, err)
		}
	}
	return mux, nil
}

// setRoutes installs a new table, or changes nothing if it does not build.
// The caller holds g.table.mu (or owns g exclusively).
func (g *Gateway) setRoutes(routes []RouteInfo) error {
	mux, err := g.buildMux(routes)
	if err != nil {
		return err
	}
	g.table.routes = routes
	g.table.mux.Store(mux)
	return nil
}

// serveHTTP answers from the current table.
func (g *Gateway) serveHTTP(w http.ResponseWriter, r *http.Request) {
	g.table.mux.Load().ServeHTTP(w, r)
}

// Routes returns the live route table.
func (g *Gateway) Routes() []RouteInfo {
	g.table.mu.Lock()
	defer g.table.mu.Unlock()
	return append([]RouteInfo(nil), g.table.routes...)
}

// errConflict marks a route whose pattern clashes with one in the table.
var errConflict = errors.New("conflicts with a route in the table")

// AddRoute adds r to the live table.
func (g *Gateway) AddRoute(r Route) error {
	g.table.mu.Lock()
	defer g.table.mu.Unlock()
	if _, err := compileRoute(len(g.table.routes), r); err != nil {
		return err
	}
	next := append(append([]RouteInfo(nil), g.table.routes...), RouteInfo{r, routeFromAdmin})
	if err := g.setRoutes(next); err != nil {
		return fmt.Errorf("%w: %v", errConflict, err)
	}
	g.log.Info("route added", "method", r.Method, "path", r.Path, "component", r.Component, "kind", r.Kind)
	return nil
}

// RemoveRoute removes the routes with this path and method ("" matches the
// route for any method, not every route) and reports how many it removed.
func (g *Gateway) RemoveRoute(method, path string) (int, error) {
	g.table.mu.Lock()
	defer g.table.mu.Unlock()
	var next []RouteInfo
	for _, r := range g.table.routes {
		if r.Path != path || r.Method != method {
			next = append(next, r)
		}
	}
	removed := len(g.table.routes) - len(next)
	if removed == 0 {
		return 0, nil
	}
	if err := g.setRoutes(next); err != nil {
		return 0, err
	}
	g.log.Info("route removed", "method", method, "path", path)
	return removed, nil
}

// adminServer is the running admin listener.
type adminServer struct {
	srv  *http.Server
	addr string
}

// startAdmin serves the admin API on c.Listen with the cluster certificate.
func startAdmin(c AdminConfig, clusterTLS *tls.Config, g *Gateway, log *slog.Logger) (*adminServer, error) {
	tok, err := adminapi.Read(c.TokenFile)
	if err != nil {
		return nil, fmt.Errorf("admin.token_file: %w", err)
	}
	tc := adminapi.ServerTLS(clusterTLS)
	ln, err := net.Listen("tcp", c.Listen)
	if err != nil {
		return nil, fmt.Errorf("admin listen: %w", listenError(c.Listen, err))
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/routes", g.adminRoutes)
	mux.HandleFunc("POST /v1/routes", g.adminAddRoute)
	mux.HandleFunc("DELETE /v1/routes", g.adminRemoveRoute)
	mux.HandleFunc("POST /v1/call/{component}/{kind}", g.adminCall)
	g.obsRoutes(mux, false)
	a := &adminServer{addr: ln.Addr().String(), srv: &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if err := tok.Check(r); err != nil {
				log.Warn("admin request refused", "why", err.Error(), "remote", r.RemoteAddr, "method", r.Method, "path", r.URL.Path)
				w.Header().Set("WWW-Authenticate", adminapi.Challenge)
				adminJSON(w, http.StatusUnauthorized, adminError{err.Error()})
				return
			}
			mux.ServeHTTP(w, r)
		}),
		TLSConfig:         tc,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}}
	go func() {
		if err := a.srv.ServeTLS(ln, "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("admin API stopped", "err", err)
		}
	}()
	return a, nil
}

// AdminAddr is the admin API's address, or "" when it is off.
func (g *Gateway) AdminAddr() string {
	if g.adm == nil {
		return ""
	}
	return g.adm.addr
}

type adminError struct {
	Error string `json:"error"`
}

var adminJSON = adminapi.WriteJSON

// RouteList is the body of GET /v1/routes.
type RouteList struct {
	Routes []RouteInfo `json:"routes"`
}

func (g *Gateway) adminRoutes(w http.ResponseWriter, r *http.Request) {
	adminJSON(w, http.StatusOK, RouteList{Routes: g.Routes()})
}

func (g *Gateway) adminAddRoute(w http.ResponseWriter, r *http.Request) {
	var ri RouteInfo
	dec := json.NewDecoder(io.LimitReader(r.Body, 64<<10))
	if err := dec.Decode(&ri); err != nil {
		adminJSON(w, http.StatusBadRequest, adminError{"the body is not a route: " + err.Error()})
		return
	}
	if err := g.AddRoute(ri.Route); err != nil {
		status := http.StatusBadRequest
		if errors.Is(err, errConflict) {
			status = http.StatusConflict
		}
		adminJSON(w, status, adminError{err.Error()})
		return
	}
	adminJSON(w, http.StatusCreated, RouteList{Routes: g.Routes()})
}

func (g *Gateway) adminRemoveRoute(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	path, method := q.Get("path"), q.Get("method")
	if path == "" {
		adminJSON(w, http.StatusBadRequest, adminError{"say which route: ?path=P[&method=M]"})
		return
	}
	n, err := g.RemoveRoute(method, path)
	switch {
	case err != nil:
		adminJSON(w, http.StatusInternalServerError, adminError{err.Error()})
	case n == 0:
		adminJSON(w, http.StatusNotFound, adminError{fmt.Sprintf("no route %s %s", method, path)})
	default:
		adminJSON(w, http.StatusOK, RouteList{Routes: g.Routes()})
	}
}

// adminCall runs component's kind with the request body as input, like a
// route with input "body" and output "body" would, and always says where the
// LP ran (Tsubame-Trace).
func (g *Gateway) adminCall(w http.ResponseWriter, r *http.Request) {
	component, kind := r.PathValue("component"), r.PathValue("kind")
	if !abi.ValidName(component) || !abi.ValidName(kind) {
		adminJSON(w, http.StatusBadRequest, adminError{fmt.Sprintf("component %q and kind %q must be valid names", component, kind)})
		return
	}
	input, err := io.ReadAll(http.MaxBytesReader(w, r.Body, int64(lp.DefaultLimits.MaxBytes)))
	if err != nil {
		adminJSON(w, http.StatusRequestEntityTooLarge, adminError{"reading the input: " + err.Error()})
		return
	}
	g.stats.requests.Add(1)
	p, err := g.do(r.Context(), component, kind, input, lp.TraceContext{})
	if err != nil {
		dispatchFailed(w, err)
		return
	}
	g.stats.replies.Add(1)
	w.Header().Set("Tsubame-Trace", traceHeader(p))
	g.writeReply(w, &route{Route: Route{Component: component, Kind: kind, Output: outBody, ContentType: "application/octet-stream"}}, p)
}

// close stops the admin listener.
func (a *adminServer) close(ctx context.Context) error {
	if a == nil {
		return nil
	}
	return a.srv.Shutdown(ctx)
}
