package gateway

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// A request body trickled for longer than write_timeout still gets its
// answer, over HTTP/1.1, HTTP/2 and HTTP/3, and its LP starts only once the
// body is complete, also on a route whose input is not the body.
func TestSlowBodyKeepsItsAnswer(t *testing.T) {
	const writeTimeout = 200 * time.Millisecond
	cert, pool := testCert(t)
	h1 := &http.Client{Timeout: 20 * time.Second}
	h2tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true}
	t.Cleanup(h2tr.CloseIdleConnections)
	h2 := &http.Client{Transport: h2tr, Timeout: 20 * time.Second}
	h3 := h3Client(t, pool)
	h3.Timeout = 20 * time.Second

	set := testSettings()
	set.writeTimeout, set.readTimeout = writeTimeout, 20*time.Second
	g, f := coreTest(t, set,
		Route{Method: "POST", Path: "/hello", Component: "hello", Kind: "hello", Input: "body"},
		Route{Method: "POST", Path: "/q", Component: "hello", Kind: "hello", Input: "query:name"})
	c := httpConfig()
	c.ReadTimeout = 20 * time.Second
	s := listenTest(t, g, c, cert, writeTimeout)
	// TCP speaks TLS here (HTTP/2); a second, plain listener serves HTTP/1.1.
	c.HTTP3 = false
	plain := listenTest(t, g, c, nil, writeTimeout)

	for _, tc := range []struct {
		name   string
		client *http.Client
		base   string
	}{
		{"HTTP/1.1", h1, "http://" + plain.addr()},
		{"HTTP/2", h2, "https://" + s.addr()},
		{"HTTP/3", h3, "https://" + s.addr()},
	} {
		for _, path := range []string{"/hello", "/q?name=q"} {
			t.Run(tc.name+path, func(t *testing.T) {
				before := len(f.sends())
				pr, pw := io.Pipe()
				early := make(chan string, 1)
				go func() {
					// Each pause is longer than write_timeout, so the body
					// ends well after it would have run out from the headers.
					for i, part := range []string{"sl", "ow", "ly"} {
						if i > 0 {
							time.Sleep(2 * writeTimeout)
						}
						if i == 2 && len(f.sends()) != before {
							early <- fmt.Sprintf("the LP was sent before the body was complete: %v", f.sends()[before:])
						}
						if _, err := pw.Write([]byte(part)); err != nil {
							pw.CloseWithError(err)
							return
						}
					}
					pw.Close()
					early <- ""
				}()
				res, err := tc.client.Post(tc.base+path, "text/plain", pr)
				if err != nil {
					t.Fatal(err)
				}
				b, err := io.ReadAll(res.Body)
				res.Body.Close()
				want := "Hello, slowly!"
				if path != "/hello" {
					want = "Hello, q!"
				}
				if err != nil || res.StatusCode != 200 || string(b) != want {
					t.Fatalf("%s: %d %q %v, want 200 %q", res.Proto, res.StatusCode, b, err, want)
				}
				if msg := <-early; msg != "" {
					t.Error(msg)
				}
				if !strings.HasPrefix(res.Proto, "HTTP/"+tc.name[5:6]) {
					t.Errorf("answered over %s, want %s", res.Proto, tc.name)
				}
			})
		}
	}
}

// A query parameter with a bad percent escape is a 400 naming it, not an
// empty parameter.
func TestBadQueryEscape(t *testing.T) {
	f := newFake("hello", "n1")
	_, url := newTest(t, f, testSettings())
	code, _, body := get(t, url+"/hello?name=%zz")
	if code != 400 || !strings.Contains(body, `"%zz"`) {
		t.Errorf("bad escape: %d %q, want 400 naming %%zz", code, body)
	}
	if len(f.sends()) != 0 {
		t.Errorf("an LP was sent for a bad query: %v", f.sends())
	}
	if code, _, body := get(t, url+"/hello?name=%41"); code != 200 || body != "Hello, A!" {
		t.Errorf("good escape: %d %q", code, body)
	}
}

// An HTTP/1.1 request with both Content-Length and Transfer-Encoding is
// answered and the connection closed (RFC 9112 §6.3); one with either alone
// keeps it open.
func TestContentLengthWithTransferEncodingCloses(t *testing.T) {
	g, _ := coreTest(t, testSettings(), Route{Method: "POST", Path: "/hello", Component: "hello", Kind: "hello", Input: "body"})
	s := listenTest(t, g, httpConfig(), nil, time.Minute)
	for _, tc := range []struct {
		name, headers, body string
		closes              bool
	}{
		{"both", "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n", "2\r\nab\r\n0\r\n\r\n", true},
		{"chunked only", "Transfer-Encoding: chunked\r\n", "2\r\nab\r\n0\r\n\r\n", false},
		{"length only", "Content-Length: 2\r\n", "ab", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", s.addr())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(10 * time.Second))
			fmt.Fprintf(conn, "POST /hello HTTP/1.1\r\nHost: x\r\n%s\r\n%s", tc.headers, tc.body)
			br := bufio.NewReader(conn)
			res, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != 200 || string(b) != "Hello, ab!" {
				t.Fatalf("%d %q", res.StatusCode, b)
			}
			// A second request on the same connection: answered unless closed.
			fmt.Fprintf(conn, "POST /hello HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\ncd")
			res, err = http.ReadResponse(br, nil)
			if tc.closes {
				if err == nil {
					t.Errorf("connection kept open after CL+TE: second answer %d", res.StatusCode)
				}
				return
			}
			if err != nil || res.StatusCode != 200 {
				t.Errorf("second request on a kept connection: %v", err)
			}
		})
	}
}
