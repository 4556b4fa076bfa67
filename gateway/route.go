package gateway

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"

	"github.com/tsubame-rt/tsubame/abi"
)

// Route maps one HTTP method and path pattern to a component. It is one
// [[route]] table of the gateway's TOML file.
type Route struct {
	// Method is the HTTP method ("GET", "POST", ...); empty matches any.
	Method string `toml:"method"`
	// Path is a net/http ServeMux path pattern: "/hello", "/users/{id}",
	// "/files/{path...}". Wildcards can feed the input ("path:NAME").
	Path string `toml:"path"`
	// Component and Kind are the root entry's target and request kind.
	Component string `toml:"component"`
	Kind      string `toml:"kind"`
	// Input says how the request becomes the root entry's input:
	// "none", "body", "query", "query:NAME", "path:NAME" or "request"
	// (default "none"). See docs/gateway.md.
	Input string `toml:"input"`
	// Output says how the reply becomes the response: "body" (default) or
	// "response".
	Output string `toml:"output"`
	// ContentType is the response's content type in output mode "body"
	// (default "text/plain; charset=utf-8").
	ContentType string `toml:"content_type"`
	// Headers are the request headers copied into a "request" envelope, in
	// this order (default ["Content-Type"]).
	Headers []string `toml:"headers"`
}

// Input modes.
const (
	inNone    = "none"
	inBody    = "body"
	inQuery   = "query"
	inRequest = "request"
	inQueryP  = "query:" // prefix
	inPathP   = "path:"  // prefix
)

// Output modes.
const (
	outBody     = "body"
	outResponse = "response"
)

const defaultContentType = "text/plain; charset=utf-8"

// route is a validated Route, ready to serve.
type route struct {
	Route
	pattern  string // ServeMux pattern: "GET /hello"
	in, name string // input mode without its argument, and the argument
	needBody bool
}

// compileRoute validates r and fills its defaults. i numbers the route for
// error messages.
func compileRoute(i int, r Route) (*route, error) {
	where := fmt.Sprintf("route %d (%s %s)", i+1, r.Method, r.Path)
	if r.Method == "" {
		where = fmt.Sprintf("route %d (%s)", i+1, r.Path)
	}
	fail := func(format string, a ...any) (*route, error) {
		return nil, fmt.Errorf("%s: %s", where, fmt.Sprintf(format, a...))
	}
	if r.Path == "" || r.Path[0] != '/' {
		return fail("path %q must start with /", r.Path)
	}
	if r.Method != "" && !isToken(r.Method) {
		return fail("method %q is not an HTTP method token", r.Method)
	}
	if !abi.ValidName(r.Component) {
		return fail("component %q is not a valid component name (ASCII letters, digits, _ - ., starting with a letter, at most %d bytes)", r.Component, abi.MaxName)
	}
	if !abi.ValidName(r.Kind) {
		return fail("kind %q is not a valid request kind name", r.Kind)
	}
	rt := &route{Route: r}
	rt.pattern = r.Path
	if r.Method != "" {
		rt.pattern = r.Method + " " + r.Path
	}
	if r.Path == healthPath && (r.Method == "" || r.Method == http.MethodGet || r.Method == http.MethodHead) {
		return fail("%s is reserved for the gateway's health check", healthPath)
	}

	if rt.Input == "" {
		rt.Input = inNone
	}
	switch mode := rt.Input; {
	case mode == inNone, mode == inBody, mode == inQuery, mode == inRequest:
		rt.in = mode
	case strings.HasPrefix(mode, inQueryP):
		rt.in, rt.name = inQueryP, mode[len(inQueryP):]
		if rt.name == "" {
			return fail("input %q names no query parameter", mode)
		}
	case strings.HasPrefix(mode, inPathP):
		rt.in, rt.name = inPathP, mode[len(inPathP):]
		if !strings.Contains(r.Path, "{"+rt.name+"}") && !strings.Contains(r.Path, "{"+rt.name+"...}") {
			return fail("input %q names no wildcard of path %q", mode, r.Path)
		}
	default:
		return fail("unknown input mode %q (want none, body, query, query:NAME, path:NAME or request)", mode)
	}
	rt.needBody = rt.in == inBody || rt.in == inRequest

	if rt.Output == "" {
		rt.Output = outBody
	}
	if rt.Output != outBody && rt.Output != outResponse {
		return fail("unknown output mode %q (want body or response)", rt.Output)
	}
	if rt.ContentType == "" {
		rt.ContentType = defaultContentType
	}
	if rt.Headers == nil {
		rt.Headers = []string{"Content-Type"}
	}
	for j, h := range rt.Headers {
		if !isToken(h) {
			return fail("header %q is not a header name", h)
		}
		rt.Headers[j] = textproto.CanonicalMIMEHeaderKey(h)
	}
	return rt, nil
}

// input builds the root entry's input from the request; body is the request
// body already read (nil unless the mode needs it). A query parameter mode
// fails on a query string with a bad escape rather than read it as empty.
func (rt *route) input(r *http.Request, body []byte) ([]byte, error) {
	switch rt.in {
	case inBody:
		return body, nil
	case inQuery:
		return []byte(r.URL.RawQuery), nil
	case inQueryP:
		q, err := url.ParseQuery(r.URL.RawQuery)
		if err != nil {
			return nil, fmt.Errorf("bad query string: %w", err)
		}
		return []byte(q.Get(rt.name)), nil
	case inPathP:
		return []byte(r.PathValue(rt.name)), nil
	case inRequest:
		return requestEnvelope(r, rt.Headers, body), nil
	}
	return nil, nil
}

// requestEnvelope encodes a request for input mode "request": the request
// line, the selected headers and the body, in the shape of HTTP/1.1 with
// bare LF line ends (docs/gateway.md):
//
//	METHOD SP TARGET LF
//	Name: value LF      (zero or more)
//	LF
//	body                (to the end)
func requestEnvelope(r *http.Request, headers []string, body []byte) []byte {
	target := r.URL.EscapedPath()
	if r.URL.RawQuery != "" {
		target += "?" + r.URL.RawQuery
	}
	n := len(r.Method) + len(target) + 3 + len(body)
	for _, h := range headers {
		for _, v := range headerValues(r, h) {
			n += len(h) + len(v) + 3
		}
	}
	b := make([]byte, 0, n)
	b = append(b, r.Method...)
	b = append(b, ' ')
	b = append(b, target...)
	b = append(b, '\n')
	for _, h := range headers {
		for _, v := range headerValues(r, h) {
			b = append(b, h...)
			b = append(b, ": "...)
			b = append(b, v...)
			b = append(b, '\n')
		}
	}
	b = append(b, '\n')
	return append(b, body...)
}

// headerValues returns a request header's values; Host lives outside
// r.Header in net/http.
func headerValues(r *http.Request, name string) []string {
	if name == "Host" {
		return []string{r.Host}
	}
	return r.Header[name]
}

// response is a decoded output-mode "response" envelope.
type response struct {
	status int
	header http.Header
	body   []byte
}

// maxEnvelopeHeaders bounds the headers of a response envelope.
const maxEnvelopeHeaders = 64

// forbiddenHeaders are response headers a component may not set: net/http
// owns the message framing and the connection.
var forbiddenHeaders = map[string]bool{
	"Connection": true, "Content-Length": true, "Keep-Alive": true, "Proxy-Connection": true,
	"Te": true, "Trailer": true, "Transfer-Encoding": true, "Upgrade": true, "Alt-Svc": true,
}

// parseResponse decodes a reply in output mode "response":
//
//	STATUS LF           three digits, 200 to 599
//	Name: value LF      (zero or more)
//	LF
//	body                (to the end)
//
// A CR before an LF is tolerated.
func parseResponse(b []byte) (response, error) {
	line, rest, ok := cutLine(b)
	if !ok {
		return response{}, errors.New("no status line")
	}
	status, err := strconv.Atoi(string(line))
	if err != nil || len(line) != 3 || status < 200 || status > 599 {
		return response{}, fmt.Errorf("status line %q is not a status from 200 to 599", trunc(line))
	}
	res := response{status: status, header: http.Header{}}
	for n := 0; ; n++ {
		line, rest, ok = cutLine(rest)
		if !ok {
			return response{}, errors.New("headers not ended by an empty line")
		}
		if len(line) == 0 {
			break
		}
		if n == maxEnvelopeHeaders {
			return response{}, fmt.Errorf("more than %d headers", maxEnvelopeHeaders)
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok || !isToken(string(name)) {
			return response{}, fmt.Errorf("header line %q is not \"Name: value\"", trunc(line))
		}
		value = bytes.TrimSpace(value)
		for _, c := range value {
			if c < ' ' && c != '\t' || c == 0x7f {
				return response{}, fmt.Errorf("header %s has a control character", name)
			}
		}
		key := textproto.CanonicalMIMEHeaderKey(string(name))
		if forbiddenHeaders[key] {
			return response{}, fmt.Errorf("header %s may not be set by a component", key)
		}
		res.header.Add(key, string(value))
	}
	res.body = rest
	return res, nil
}

func cutLine(b []byte) (line, rest []byte, ok bool) {
	line, rest, ok = bytes.Cut(b, []byte("\n"))
	return bytes.TrimSuffix(line, []byte("\r")), rest, ok
}

func trunc(b []byte) string {
	if len(b) > 40 {
		return string(b[:40]) + "..."
	}
	return string(b)
}

// isToken reports whether s is an HTTP token (RFC 9110 section 5.6.2): the
// shape of method and header names.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
			continue
		}
		if !strings.ContainsRune("!#$%&'*+-.^_`|~", rune(c)) {
			return false
		}
	}
	return true
}

// failureStatus maps an LP failure code to the HTTP status the client gets.
func failureStatus(code uint32) int {
	switch {
	case code >= 400 && code <= 599:
		return int(code)
	case code == abi.CodeTimeout:
		return http.StatusGatewayTimeout
	case code == abi.CodeNoComponent, code == abi.CodeUnavailable, code == abi.CodeStoreDown:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// failureBody says why an LP failed. A component that chose an HTTP status
// speaks to the client directly; a host code is explained.
func failureBody(component string, code uint32, msg string) string {
	if code >= 400 && code <= 599 {
		if msg == "" {
			msg = http.StatusText(int(code))
		}
		return msg + "\n"
	}
	name := abi.CodeName(code)
	if name == "" {
		name = "component error"
	}
	return fmt.Sprintf("tsubame: %s failed: %s (code %d): %s\n", component, name, code, msg)
}
