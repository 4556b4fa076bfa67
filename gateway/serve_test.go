package gateway

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"

	"github.com/tsubame-rt/tsubame/internal/mesh/pki"
)

// serveTest starts a gateway core over a fake node answering "hello" behind
// real listeners configured by c.
func serveTest(t *testing.T, c HTTPConfig, cert *tls.Config) *servers {
	t.Helper()
	g, _ := coreTest(t, testSettings(), helloRoute)
	return listenTest(t, g, c, cert, time.Minute)
}

// coreTest is a gateway core over a fake node holding "hello" and answering
// with greet.
func coreTest(t *testing.T, set settings, routes ...Route) (*Gateway, *fakeNet) {
	t.Helper()
	f := newFake("hello", "n1")
	g, err := newCore("gw", set, routes, f, f, first, nil)
	if err != nil {
		t.Fatal(err)
	}
	f.g = g
	return g, f
}

// listenTest serves g behind real listeners until the test ends.
func listenTest(t *testing.T, g *Gateway, c HTTPConfig, cert *tls.Config, writeTimeout time.Duration) *servers {
	t.Helper()
	s, err := listenHTTP(c, cert, writeTimeout, g.Handler(), g.log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.shutdown(ctx)
	})
	return s
}

func httpConfig() HTTPConfig {
	c := DefaultConfig().HTTP
	c.Listen = "127.0.0.1:0"
	return c
}

// testCert issues a client-facing certificate for 127.0.0.1 and returns it
// with the pool that trusts it.
func testCert(t *testing.T) (*tls.Config, *x509.CertPool) {
	t.Helper()
	ca, err := pki.NewCA("test-ca")
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, err := ca.Issue("gateway", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca.CertPEM())
	return &tls.Config{Certificates: []tls.Certificate{pair}}, pool
}

// fetch GETs url with client and checks the hello answer; it returns the
// response's protocol and Alt-Svc header.
func fetch(t *testing.T, client *http.Client, url string) (proto, altSvc string) {
	t.Helper()
	res, b := getWith(t, client, url)
	if res.StatusCode != 200 || b != "Hello, p!" {
		t.Fatalf("%s: %d %q", url, res.StatusCode, b)
	}
	return res.Proto, res.Header.Get("Alt-Svc")
}

func h3Client(t *testing.T, pool *x509.CertPool) *http.Client {
	tr := &http3.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
	t.Cleanup(func() { tr.Close() })
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

func TestServePlainHTTP(t *testing.T) {
	s := serveTest(t, httpConfig(), nil)
	proto, alt := fetch(t, http.DefaultClient, "http://"+s.addr()+"/hello?name=p")
	if proto != "HTTP/1.1" || alt != "" {
		t.Errorf("proto %s Alt-Svc %q, want HTTP/1.1 without Alt-Svc", proto, alt)
	}
	if s.udp != nil {
		t.Error("HTTP/3 listening without a certificate")
	}
}

func TestServeHTTPSAndHTTP3(t *testing.T) {
	cert, pool := testCert(t)
	s := serveTest(t, httpConfig(), cert)
	_, port, _ := net.SplitHostPort(s.addr())
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true}
	defer tr.CloseIdleConnections()
	proto, alt := fetch(t, &http.Client{Transport: tr}, "https://"+s.addr()+"/hello?name=p")
	if proto != "HTTP/2.0" || alt != `h3=":`+port+`"; ma=86400` {
		t.Errorf("HTTPS: proto %s Alt-Svc %q, want HTTP/2.0 advertising h3 on port %s", proto, alt, port)
	}
	if proto, alt = fetch(t, h3Client(t, pool), "https://"+s.addr()+"/hello?name=p"); proto != "HTTP/3.0" || alt != "" {
		t.Errorf("HTTP/3: proto %s Alt-Svc %q", proto, alt)
	}
}

// tcp = "http" with a certificate: plain HTTP/1.1 on TCP and HTTP/3 on UDP,
// the demo's shape.
func TestServePlainTCPWithHTTP3(t *testing.T) {
	cert, pool := testCert(t)
	c := httpConfig()
	c.TCP = "http"
	s := serveTest(t, c, cert)
	if proto, alt := fetch(t, http.DefaultClient, "http://"+s.addr()+"/hello?name=p"); proto != "HTTP/1.1" || !strings.HasPrefix(alt, "h3=") {
		t.Errorf("TCP: proto %s Alt-Svc %q", proto, alt)
	}
	if proto, _ := fetch(t, h3Client(t, pool), "https://"+s.addr()+"/hello?name=p"); proto != "HTTP/3.0" {
		t.Errorf("UDP: proto %s", proto)
	}
}

func TestListenBusy(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c := httpConfig()
	c.Listen = ln.Addr().String()
	_, err = listenHTTP(c, nil, time.Minute, http.NotFoundHandler(), nil)
	if err == nil || !strings.Contains(err.Error(), "already in use") {
		t.Errorf("error %v, want one saying the address is in use", err)
	}
}

// A client that never finishes its headers is cut off after
// read_header_timeout, and others are served meanwhile.
func TestSlowClientHeaders(t *testing.T) {
	c := httpConfig()
	c.ReadHeaderTimeout = 100 * time.Millisecond
	s := serveTest(t, c, nil)
	conn, err := net.Dial("tcp", s.addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "GET /hello?name=slow HTTP/1.1\r\nHost: x\r\n"); err != nil {
		t.Fatal(err)
	}
	fetch(t, http.DefaultClient, "http://"+s.addr()+"/hello?name=p")
	conn.SetReadDeadline(time.Now().Add(10 * time.Second)) // a bound for the test, not a measurement
	b, err := io.ReadAll(conn)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("connection still open after 10s with a 100ms read_header_timeout")
	}
	if strings.Contains(string(b), "Hello") {
		t.Errorf("slow client was answered: %q", b)
	}
}

// A client that sends its headers but trickles the body is cut off after
// read_timeout.
func TestSlowClientBody(t *testing.T) {
	f := newFake("hello", "n1")
	g, err := newCore("gw", testSettings(), []Route{{Method: "POST", Path: "/echo", Component: "hello", Kind: "k", Input: "body"}}, f, f, first, nil)
	if err != nil {
		t.Fatal(err)
	}
	f.g = g
	c := httpConfig()
	c.ReadTimeout = 200 * time.Millisecond
	s, err := listenHTTP(c, nil, time.Minute, g.Handler(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.shutdown(context.Background())
	conn, err := net.Dial("tcp", s.addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nonly a little")
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err == nil {
		b, _ := io.ReadAll(res.Body)
		if res.StatusCode == 200 {
			t.Fatalf("trickled body answered 200 %q", b)
		}
		return // 400: the body read failed with the deadline
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatal("connection still open after 10s with a 200ms read_timeout")
	}
}

func TestHeaderTooLarge(t *testing.T) {
	c := httpConfig()
	c.MaxHeaderBytes = 1024
	s := serveTest(t, c, nil)
	req, _ := http.NewRequest("GET", "http://"+s.addr()+"/hello?name=p", nil)
	req.Header.Set("X-Big", strings.Repeat("a", 8192))
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("status %d, want 431", res.StatusCode)
	}
	fetch(t, http.DefaultClient, "http://"+s.addr()+"/hello?name=p")
}

// An HTTP/3 client that vanished without closing its connection must not
// hold a graceful stop for the whole grace period: the stop waits for
// requests in flight, not for clients to say goodbye.
func TestShutdownAfterHTTP3ClientVanished(t *testing.T) {
	cert, pool := testCert(t)
	f := newFake("hello", "n1")
	g, err := newCore("gw", testSettings(), []Route{helloRoute}, f, f, first, nil)
	if err != nil {
		t.Fatal(err)
	}
	f.g = g
	s, err := listenHTTP(httpConfig(), cert, time.Minute, g.Handler(), g.log)
	if err != nil {
		t.Fatal(err)
	}
	udp, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	qt := &quic.Transport{Conn: udp}
	tr := &http3.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool},
		Dial: func(ctx context.Context, addr string, tc *tls.Config, qc *quic.Config) (*quic.Conn, error) {
			ua, err := net.ResolveUDPAddr("udp", addr)
			if err != nil {
				return nil, err
			}
			return qt.DialEarly(ctx, ua, tc, qc)
		},
	}
	fetch(t, &http.Client{Transport: tr, Timeout: 10 * time.Second}, "https://"+s.addr()+"/hello?name=p")
	udp.Close() // the client is gone: nothing answers the server's packets any more

	// Far longer than a stop needs (milliseconds) and shorter than QUIC's
	// idle timeout (30 s), which was what ended the stop before: it ran
	// into this deadline and failed with it.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := s.shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
}
