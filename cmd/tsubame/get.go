package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/quic-go/quic-go/http3"
)

func init() {
	register(command{"get", "fetch a URL over HTTP/1.1, HTTP/2 or HTTP/3 (a small client for checks)", runGet})
}

func runGet(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("tsubame get", flag.ContinueOnError)
	fs.SetOutput(stderr)
	h3 := fs.Bool("http3", false, "use HTTP/3 (QUIC) only; the URL must be https://")
	caFile := fs.String("ca", os.Getenv(envCA), "trust the server certificate if this CA (`PEM`) issued it, as well as the system's (default $"+envCA+")")
	method := fs.String("X", "", "request `method` (default GET, or POST with --data)")
	data := fs.String("data", "", "request `body`; @FILE reads it from FILE, @- from stdin")
	include := fs.Bool("i", false, "print the status line and the response headers before the body")
	wait := fs.Duration("wait", 0, "keep retrying for up to this long while the server refuses connections or answers 502, 503 or 504 (a cluster still starting)")
	timeout := fs.Duration("timeout", 30*time.Second, "give up on one attempt after this long")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: tsubame get [--http3] [--ca CA.pem] [-i] [-X METHOD] [--data BODY|@FILE] [--wait D] URL\n\n"+
			"Sends one request and prints the response body (with -i, the status line and headers\n"+
			"first). HTTP/1.1 for http://, HTTPS with HTTP/2 for https://, HTTP/3 with --http3.\n"+
			"Exits 1 when the status is 400 or above (the body is still printed) or on an error.")
		fs.PrintDefaults()
	}
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return 2
	}
	if len(pos) != 1 || *timeout <= 0 || *wait < 0 {
		fs.Usage()
		return 2
	}
	url := pos[0]
	if *h3 && !strings.HasPrefix(url, "https://") {
		fmt.Fprintln(stderr, "tsubame get: --http3 needs an https:// URL (HTTP/3 is always TLS)")
		return 2
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if *caFile != "" {
		pool, err := systemPlusCA(*caFile)
		if err != nil {
			fmt.Fprintln(stderr, "tsubame get:", err)
			return 2
		}
		tc.RootCAs = pool
	}
	var body []byte
	if strings.HasPrefix(*data, "@") {
		if *data == "@-" {
			body, err = io.ReadAll(os.Stdin)
		} else {
			body, err = os.ReadFile((*data)[1:])
		}
		if err != nil {
			fmt.Fprintln(stderr, "tsubame get: --data:", err)
			return 2
		}
	} else if *data != "" {
		body = []byte(*data)
	}
	m := *method
	if m == "" {
		m = http.MethodGet
		if body != nil {
			m = http.MethodPost
		}
	}
	var rt http.RoundTripper
	if *h3 {
		t := &http3.Transport{TLSClientConfig: tc}
		defer t.Close()
		rt = t
	} else {
		t := &http.Transport{TLSClientConfig: tc, ForceAttemptHTTP2: true, Proxy: http.ProxyFromEnvironment}
		defer t.CloseIdleConnections()
		rt = t
	}
	client := &http.Client{Transport: rt, Timeout: *timeout}
	deadline := time.Now().Add(*wait)
	for {
		req, err := http.NewRequestWithContext(context.Background(), m, url, strings.NewReader(string(body)))
		if err != nil {
			fmt.Fprintln(stderr, "tsubame get:", err)
			return 2
		}
		if body == nil {
			req.Body, req.ContentLength = nil, 0
		}
		resp, err := client.Do(req)
		retry := err != nil || resp.StatusCode == http.StatusBadGateway ||
			resp.StatusCode == http.StatusServiceUnavailable || resp.StatusCode == http.StatusGatewayTimeout
		if retry && time.Now().Before(deadline) {
			if resp != nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			time.Sleep(200 * time.Millisecond)
			continue
		}
		if err != nil {
			var ue x509.UnknownAuthorityError
			if errors.As(err, &ue) {
				err = fmt.Errorf("%w (pass --ca with the CA that issued the server's certificate)", err)
			}
			fmt.Fprintln(stderr, "tsubame get:", err)
			return 1
		}
		return printResponse(resp, *include, stdout, stderr)
	}
}

// printResponse writes the response (headers with -i) and turns its status
// into the exit code.
func printResponse(resp *http.Response, include bool, stdout, stderr io.Writer) int {
	defer resp.Body.Close()
	if include {
		fmt.Fprintf(stdout, "%s %s\n", resp.Proto, resp.Status)
		names := make([]string, 0, len(resp.Header))
		for k := range resp.Header {
			names = append(names, k)
		}
		sort.Strings(names)
		for _, k := range names {
			for _, v := range resp.Header[k] {
				fmt.Fprintf(stdout, "%s: %s\n", k, v)
			}
		}
		fmt.Fprintln(stdout)
	}
	if _, err := io.Copy(stdout, resp.Body); err != nil {
		fmt.Fprintln(stderr, "tsubame get: read the body:", err)
		return 1
	}
	if resp.StatusCode >= 400 {
		if !include {
			fmt.Fprintf(stderr, "tsubame get: %s\n", resp.Status)
		}
		return 1
	}
	return 0
}

// systemPlusCA is the system's trusted roots plus the PEM certificates in
// file (a cluster CA, or any private CA a gateway's certificate comes from).
func systemPlusCA(file string) (*x509.CertPool, error) {
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	return addCA(pool, file)
}
