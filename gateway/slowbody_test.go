package gateway

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
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

	f := newFake("hello", "n1")
	set := testSettings()
	set.writeTimeout, set.readTimeout = writeTimeout, 20*time.Second
	g, err := newCore("gw", set, []Route{
		{Method: "POST", Path: "/hello", Component: "hello", Kind: "hello", Input: "body"},
		{Method: "POST", Path: "/q", Component: "hello", Kind: "hello", Input: "query:name"},
	}, f, f, first, nil)
	if err != nil {
		t.Fatal(err)
	}
	f.g = g
	c := httpConfig()
	c.ReadTimeout = 20 * time.Second
	s, err := listenHTTP(c, cert, writeTimeout, g.Handler(), g.log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.shutdown(ctx)
	})
	// TCP speaks TLS here (HTTP/2); a second, plain listener serves HTTP/1.1.
	c.HTTP3 = false
	plain, err := listenHTTP(c, nil, writeTimeout, g.Handler(), g.log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { plain.shutdown(context.Background()) })

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
