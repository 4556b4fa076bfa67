package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/quic-go/quic-go/http3"
)

// syncBuffer is a bytes.Buffer safe to read while a command writes to it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestDemo is the done criterion of `tsubame demo`: it prints a URL where
// /hello?name=world answers "Hello, world!" over HTTP/1.1 and over HTTP/3,
// the request's steps ran on different nodes, and it stops cleanly.
func TestDemo(t *testing.T) {
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr syncBuffer
	exit := make(chan int, 1)
	go func() { exit <- demoMain(ctx, []string{"--http", "127.0.0.1:0", "--ca-out", caFile}, &stdout, &stderr) }()

	urlRE := regexp.MustCompile(`gateway at (http://127\.0\.0\.1:\d+) `)
	var base string
	deadline := time.Now().Add(2 * time.Minute)
	for base == "" {
		select {
		case code := <-exit:
			t.Fatalf("demo exited with %d before serving:\n%s\n%s", code, stdout.String(), stderr.String())
		default:
		}
		if m := urlRE.FindStringSubmatch(stdout.String()); m != nil {
			base = m[1]
		} else if time.Now().After(deadline) {
			t.Fatalf("no URL printed within 2 minutes:\n%s\n%s", stdout.String(), stderr.String())
		} else {
			time.Sleep(50 * time.Millisecond)
		}
	}

	res, err := http.Get(base + "/hello?name=world")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || string(body) != "Hello, world!" || res.Proto != "HTTP/1.1" {
		t.Fatalf("HTTP/1.1: %s %d %q", res.Proto, res.StatusCode, body)
	}
	// hello runs, calls greet on another node, and resumes: three steps.
	trace := strings.Fields(res.Header.Get("Tsubame-Trace"))
	if len(trace) != 3 || trace[0] == trace[1] || trace[1] == trace[2] {
		t.Errorf("Tsubame-Trace %q: want hello, greet, hello on alternating nodes", res.Header.Get("Tsubame-Trace"))
	}
	if alt := res.Header.Get("Alt-Svc"); !strings.HasPrefix(alt, `h3=":`) {
		t.Errorf("Alt-Svc %q does not advertise HTTP/3", alt)
	}

	caPEM, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		t.Fatalf("--ca-out wrote no certificate: %q", caPEM)
	}
	h3 := &http3.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
	defer h3.Close()
	h3url := strings.Replace(base, "http://", "https://", 1) + "/hello?name=quic"
	res, err = (&http.Client{Transport: h3, Timeout: 30 * time.Second}).Get(h3url)
	if err != nil {
		t.Fatalf("HTTP/3: %v", err)
	}
	body, _ = io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || string(body) != "Hello, quic!" || res.ProtoMajor != 3 {
		t.Fatalf("HTTP/3: %s %d %q", res.Proto, res.StatusCode, body)
	}

	cancel() // Ctrl-C
	select {
	case code := <-exit:
		if code != 0 {
			t.Errorf("demo exited with %d after Ctrl-C:\n%s", code, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("demo still running 30s after Ctrl-C")
	}
	if !strings.Contains(stdout.String(), "Stopping...") {
		t.Errorf("stdout %q", stdout.String())
	}
}

// A busy gateway address fails at once with advice to use --http.
func TestDemoBusyAddress(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var stdout, stderr syncBuffer
	code := demoMain(context.Background(), []string{"--http", ln.Addr().String()}, &stdout, &stderr)
	if code != 1 || !strings.Contains(stderr.String(), "--http") || !strings.Contains(stderr.String(), ln.Addr().String()) {
		t.Errorf("exit %d, stderr %q: want 1 and advice naming --http and the address", code, stderr.String())
	}
}
