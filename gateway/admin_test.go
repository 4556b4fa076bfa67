package gateway

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tsubame-rt/tsubame/internal/mesh/cluster"
	"github.com/tsubame-rt/tsubame/internal/mesh/pki"
)

const adminToken = "0123456789abcdef0123456789abcdef"

// adminTest starts the admin API of a gateway core over f and returns an
// HTTPS client trusting the test CA, and the admin base URL.
func adminTest(t *testing.T, f *fakeNet) (*Gateway, string, *http.Client, string) {
	t.Helper()
	g, url := newTest(t, f, testSettings())
	ca, err := pki.NewCA("test-ca")
	if err != nil {
		t.Fatal(err)
	}
	tc, err := ca.IssueTLS("gw")
	if err != nil {
		t.Fatal(err)
	}
	tokFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokFile, []byte(adminToken), 0o600); err != nil {
		t.Fatal(err)
	}
	g.adm, err = startAdmin(AdminConfig{Listen: "127.0.0.1:0", TokenFile: tokFile}, tc, g, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.adm.close(context.Background()) })
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca.CertPEM())
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	return g, url, client, "https://" + g.AdminAddr()
}

func adminDo(t *testing.T, c *http.Client, method, url, token string, body []byte) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, res.Header, string(b)
}

func TestAdminRoutes(t *testing.T) {
	f := newFake("hello", "n1")
	f.byComp["fresh"] = []cluster.Peer{holder("n2")}
	g, url, c, admin := adminTest(t, f)

	// Every admin request needs the token.
	for _, tok := range []string{"", "wrong-token-0123456789"} {
		code, h, body := adminDo(t, c, "GET", admin+"/v1/routes", tok, nil)
		if code != 401 || h.Get("WWW-Authenticate") == "" || !strings.Contains(body, "bearer token") {
			t.Errorf("token %q: %d %q", tok, code, body)
		}
	}

	// A route added at run time serves at once; the old ones keep serving.
	if code, _, _ := get(t, url+"/fresh?name=x"); code != 404 {
		t.Fatalf("before the route exists: %d", code)
	}
	add := `{"method": "GET", "path": "/fresh", "component": "fresh", "kind": "hello", "input": "query:name"}`
	code, _, body := adminDo(t, c, "POST", admin+"/v1/routes", adminToken, []byte(add))
	if code != 201 {
		t.Fatalf("add route: %d %s", code, body)
	}
	if code, _, body := get(t, url+"/fresh?name=x"); code != 200 || body != "Hello, x!" {
		t.Errorf("new route: %d %q", code, body)
	}
	if code, _, body := get(t, url+"/hello?name=y"); code != 200 || body != "Hello, y!" {
		t.Errorf("config route after the change: %d %q", code, body)
	}
	var l RouteList
	code, _, body = adminDo(t, c, "GET", admin+"/v1/routes", adminToken, nil)
	if err := json.Unmarshal([]byte(body), &l); code != 200 || err != nil || len(l.Routes) != 2 ||
		l.Routes[0].Source != "config" || l.Routes[1].Source != "admin" || l.Routes[1].Component != "fresh" {
		t.Fatalf("list: %d %s", code, body)
	}

	// Bad and clashing routes are refused and change nothing.
	for _, tc := range []struct {
		body string
		code int
		want string
	}{
		{add, 409, "conflicts"},
		{`{"path": "nope", "component": "a", "kind": "b"}`, 400, "must start with /"},
		{`{"path": "/x", "component": "9bad", "kind": "b"}`, 400, "not a valid component name"},
		{`not json`, 400, "not a route"},
	} {
		if code, _, body := adminDo(t, c, "POST", admin+"/v1/routes", adminToken, []byte(tc.body)); code != tc.code || !strings.Contains(body, tc.want) {
			t.Errorf("add %s: %d %s, want %d mentioning %q", tc.body, code, body, tc.code, tc.want)
		} else if strings.Contains(body, ".go:") || strings.Contains(body, "registered at") {
			t.Errorf("add %s: the error names Go source: %s", tc.body, body)
		}
	}
	if n := len(g.Routes()); n != 2 {
		t.Errorf("%d routes after refused changes, want 2", n)
	}

	// Removal.
	if code, _, body := adminDo(t, c, "DELETE", admin+"/v1/routes?method=GET&path=/fresh", adminToken, nil); code != 200 {
		t.Fatalf("remove: %d %s", code, body)
	}
	if code, _, _ := get(t, url+"/fresh?name=x"); code != 404 {
		t.Errorf("removed route: %d", code)
	}
	if code, _, _ := adminDo(t, c, "DELETE", admin+"/v1/routes?path=/fresh", adminToken, nil); code != 404 {
		t.Errorf("remove of a missing route: %d", code)
	}
}

func TestAdminCall(t *testing.T) {
	f := newFake("greeter", "n1")
	_, _, c, admin := adminTest(t, f)
	code, h, body := adminDo(t, c, "POST", admin+"/v1/call/greeter/hello", adminToken, []byte("admin"))
	if code != 200 || body != "Hello, admin!" || h.Get("Tsubame-Trace") != "n1" {
		t.Errorf("call: %d %q trace %q", code, body, h.Get("Tsubame-Trace"))
	}
	if code, _, body := adminDo(t, c, "POST", admin+"/v1/call/absent/hello", adminToken, nil); code != 503 || !strings.Contains(body, "absent") {
		t.Errorf("call of a component nobody holds: %d %q", code, body)
	}
	if code, _, _ := adminDo(t, c, "POST", admin+"/v1/call/greeter/hello", "", nil); code != 401 {
		t.Errorf("call without the token: %d", code)
	}
}

// A gateway with the admin API on may start without routes.
func TestAdminConfig(t *testing.T) {
	c := DefaultConfig()
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "no routes") {
		t.Errorf("no routes, no admin: %v", err)
	}
	c.Admin.TokenFile = "token"
	if err := c.Validate(); err != nil {
		t.Errorf("no routes with the admin API on: %v", err)
	}
	c.Admin.Listen = "nowhere"
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "admin.listen") {
		t.Errorf("bad admin address: %v", err)
	}
}
