package gateway

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/tsubame-rt/tsubame/lp"
)

// Each input mode builds the documented bytes from a request.
func TestInputModes(t *testing.T) {
	for _, tc := range []struct {
		route  Route
		method string
		target string
		header map[string]string
		body   string
		want   string
	}{
		{Route{Path: "/a", Input: "none"}, "GET", "/a?x=1", nil, "", ""},
		{Route{Path: "/a"}, "GET", "/a?x=1", nil, "", ""},
		{Route{Path: "/a", Input: "query"}, "GET", "/a?x=1&y=%20", nil, "", "x=1&y=%20"},
		{Route{Path: "/a", Input: "query:name"}, "GET", "/a?name=J%C3%BCrgen&name=2", nil, "", "Jürgen"},
		{Route{Path: "/a", Input: "query:name"}, "GET", "/a", nil, "", ""},
		{Route{Path: "/u/{id}", Input: "path:id"}, "GET", "/u/a%2Fb", nil, "", "a/b"},
		{Route{Path: "/f/{rest...}", Input: "path:rest"}, "GET", "/f/x/y", nil, "", "x/y"},
		{Route{Path: "/a", Input: "body"}, "POST", "/a", nil, "raw\x00bytes", "raw\x00bytes"},
		{Route{Path: "/r/{id}", Input: "request"}, "POST", "/r/7?q=1",
			map[string]string{"Content-Type": "application/json", "Accept": "x"}, `{"a":1}`,
			"POST /r/7?q=1\nContent-Type: application/json\n\n{\"a\":1}"},
		{Route{Path: "/r", Input: "request", Headers: []string{"accept", "host", "x-missing"}}, "GET", "/r",
			map[string]string{"Accept": "text/html"}, "",
			"GET /r\nAccept: text/html\nHost: example.test\n\n"},
	} {
		tc.route.Component, tc.route.Kind = "c", "k"
		rt, err := compileRoute(0, tc.route)
		if err != nil {
			t.Fatalf("%+v: %v", tc.route, err)
		}
		mux := http.NewServeMux()
		var got []byte
		mux.HandleFunc(rt.pattern, func(w http.ResponseWriter, r *http.Request) {
			var body []byte
			if rt.needBody {
				body = []byte(tc.body)
			}
			got, _ = rt.input(r, body)
		})
		req := httptest.NewRequest(tc.method, "http://example.test"+tc.target, strings.NewReader(tc.body))
		for k, v := range tc.header {
			req.Header.Set(k, v)
		}
		mux.ServeHTTP(httptest.NewRecorder(), req)
		if string(got) != tc.want {
			t.Errorf("%s %s: input %q, want %q", tc.route.Input, tc.target, got, tc.want)
		}
	}
}

func TestRouteErrors(t *testing.T) {
	for _, tc := range []struct {
		route Route
		want  string
	}{
		{Route{Path: "hello", Component: "c", Kind: "k"}, "must start with /"},
		{Route{Path: "/a", Component: "", Kind: "k"}, "component \"\""},
		{Route{Path: "/a", Component: "c", Kind: "1k"}, "kind \"1k\""},
		{Route{Method: "GE T", Path: "/a", Component: "c", Kind: "k"}, "method"},
		{Route{Path: "/a", Component: "c", Kind: "k", Input: "form"}, "unknown input mode \"form\""},
		{Route{Path: "/a", Component: "c", Kind: "k", Input: "query:"}, "names no query parameter"},
		{Route{Path: "/a/{x}", Component: "c", Kind: "k", Input: "path:id"}, "names no wildcard"},
		{Route{Path: "/a", Component: "c", Kind: "k", Output: "json"}, "unknown output mode \"json\""},
		{Route{Path: "/a", Component: "c", Kind: "k", Headers: []string{"bad header"}}, "not a header name"},
		{Route{Method: "GET", Path: "/healthz", Component: "c", Kind: "k"}, "reserved"},
	} {
		_, err := compileRoute(2, tc.route)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "route 3") {
			t.Errorf("%+v: error %v, want one naming route 3 and containing %q", tc.route, err, tc.want)
		}
	}
}

func TestConflictingRoutes(t *testing.T) {
	routes := []Route{
		{Method: "GET", Path: "/a/{x}", Component: "c", Kind: "k"},
		{Method: "GET", Path: "/a/{y}", Component: "c", Kind: "k"},
	}
	_, err := newCore("gw", testSettings(), routes, &fakeNet{}, &fakeNet{}, first, nil)
	if err == nil || !strings.Contains(err.Error(), "route 2 (GET /a/{y})") || !strings.Contains(err.Error(), "conflicts") {
		t.Errorf("error %v, want a conflict naming route 2", err)
	}
}

func TestParseResponse(t *testing.T) {
	res, err := parseResponse([]byte("201\r\nContent-Type: application/json\nx-id:  7 \n\n{\"ok\":true}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if res.status != 201 || res.header.Get("Content-Type") != "application/json" || res.header.Get("X-Id") != "7" ||
		string(res.body) != "{\"ok\":true}\n" {
		t.Errorf("got %+v", res)
	}
	for in, want := range map[string]string{
		"":                              "no status line",
		"200":                           "no status line",
		"99\n\n":                        "not a status",
		"200 OK\n\n":                    "not a status",
		"700\n\n":                       "not a status",
		"200\nA: b\n":                   "not ended",
		"200\nno colon\n\n":             "not \"Name: value\"",
		"200\nBad Name: v\n\n":          "not \"Name: value\"",
		"200\nA: b\x01c\n\n":            "control character",
		"200\nContent-Length: 3\n\nabc": "may not be set",
		"200\n" + strings.Repeat("A: b\n", 65) + "\n": "more than 64 headers",
	} {
		if _, err := parseResponse([]byte(in)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v, want %q", in, err, want)
		}
	}
}

// Output mode "response" lets a component set status and headers; a
// malformed envelope is the component's fault: 502.
func TestOutputResponse(t *testing.T) {
	f := newFake("c", "n1")
	reply := "418\nContent-Type: text/x-tea\nX-Pot: 1\n\nshort and stout"
	f.handle = func(node string, p *lp.Process) error {
		go func() {
			out := reply
			if string(p.Entries[0].Input) == "bad" {
				out = "teapot\n\n"
			}
			p.Reply([]byte(out))
			f.g.accept(node, p)
		}()
		return nil
	}
	_, url := newTest(t, f, testSettings(), Route{Path: "/t", Component: "c", Kind: "k", Input: "query:v", Output: "response"})
	code, h, body := get(t, url+"/t")
	if code != 418 || h.Get("Content-Type") != "text/x-tea" || h.Get("X-Pot") != "1" || body != "short and stout" {
		t.Errorf("got %d %v %q", code, h, body)
	}
	code, _, body = get(t, url+"/t?v=bad")
	if code != 502 || !strings.Contains(body, "c replied with a malformed response envelope") {
		t.Errorf("malformed: %d %q", code, body)
	}
}
