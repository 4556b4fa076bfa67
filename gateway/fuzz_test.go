package gateway

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzLoadConfig: any gateway TOML gives a Config or an error naming the
// problem, never a panic.
func FuzzLoadConfig(f *testing.F) {
	if b, err := os.ReadFile("../testdata/gateway.toml"); err == nil {
		f.Add(b)
	}
	f.Add([]byte("[[route]]\nmethod = \"GET\"\npath = \"/x\"\ncomponent = \"c\"\nkind = \"k\"\ninput = \"query:name\"\n"))
	f.Add([]byte("[http]\nmax_body_bytes = -1\n"))
	f.Add([]byte("[[route]]\npath = \"/{a}/{a}\"\n"))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, b []byte) {
		path := filepath.Join(dir, "gw.toml")
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadConfig(path); err != nil && err.Error() == "" {
			t.Fatal("an error without a message")
		}
	})
}

// FuzzRouteInput maps arbitrary requests to LP inputs through every input
// mode: the mapping never panics, a bad query escape is an error (not an
// empty parameter), and the input never exceeds what the request carried
// plus the envelope.
func FuzzRouteInput(f *testing.F) {
	f.Add("query:name", "/hello", "name=world", "body", "text/plain")
	f.Add("query:name", "/hello", "name=%zz", "", "")
	f.Add("path:who", "/p/%41b", "", "", "")
	f.Add("request", "/r", "a=1&b=%20", "data", "x/y")
	f.Add("query", "/q", "%%", "", "")
	f.Fuzz(func(t *testing.T, mode, path, query, body, ctype string) {
		r := Route{Method: "POST", Path: "/hello", Component: "c", Kind: "k", Input: mode}
		if strings.HasPrefix(mode, "path:") {
			r.Path = "/p/{" + strings.TrimPrefix(mode, "path:") + "}"
		}
		rt, err := compileRoute(0, r)
		if err != nil {
			return // a bad route is refused at load; TestRouteErrors covers that
		}
		u := &url.URL{Path: path, RawQuery: query}
		req := httptest.NewRequest("POST", "http://x.test/", strings.NewReader(body))
		req.URL = u
		req.Header.Set("Content-Type", ctype)
		mux := http.NewServeMux()
		var in []byte
		var ierr error
		ran := false
		if err := handle(mux, rt.pattern, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ran = true
			in, ierr = rt.input(r, []byte(body))
		})); err != nil {
			return // a pattern ServeMux refuses (e.g. "{0}") is an error at load, as in setRoutes
		}
		mux.ServeHTTP(httptest.NewRecorder(), req)
		if !ran {
			return
		}
		if _, perr := url.ParseQuery(query); rt.in == inQueryP && (perr != nil) != (ierr != nil) {
			t.Fatalf("query %q: parse error %v, input error %v", query, perr, ierr)
		}
		if ierr == nil && len(in) > len(body)+len(query)+len(path)+4*len(ctype)+256 {
			t.Fatalf("input of %d bytes from a request of %d", len(in), len(body)+len(query)+len(path))
		}
	})
}
