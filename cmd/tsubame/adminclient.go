package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"
)

// adminFlags are the connection flags of the commands that talk to an admin
// API (a node's or a gateway's): where, which CA to verify it with, which
// token to present.
type adminFlags struct {
	addr      *string
	caFile    *string
	tokenFile *string
	timeout   *time.Duration
}

// Environment defaults for the address, --ca and --token-file flags, so a
// shell session can set them once for every admin command.
const (
	envCA      = "TSUBAME_CA"
	envToken   = "TSUBAME_TOKEN_FILE"
	envAdmin   = "TSUBAME_ADMIN"   // --admin: a node's admin address
	envGateway = "TSUBAME_GATEWAY" // --gateway: a gateway's admin address
)

// addAdminFlags registers the flags every admin command shares; name is the
// address flag, "admin" (a node) or "gateway", and $TSUBAME_ADMIN or
// $TSUBAME_GATEWAY overrides its default def.
func addAdminFlags(fs *flag.FlagSet, name, def, what string, timeout time.Duration) adminFlags {
	env := envAdmin
	if name == "gateway" {
		env = envGateway
	}
	if v := os.Getenv(env); v != "" {
		def = v
	}
	return adminFlags{
		addr:      fs.String(name, def, what+" admin `address` (host:port or https://host:port; default $"+env+" when set)"),
		caFile:    fs.String("ca", os.Getenv(envCA), "the cluster CA certificate (`PEM`) the admin API's certificate is checked against (default $"+envCA+")"),
		tokenFile: fs.String("token-file", os.Getenv(envToken), "`file` holding the admin bearer token (default $"+envToken+")"),
		timeout:   fs.Duration("timeout", timeout, "give up after this long"),
	}
}

// parseInterspersed parses flags that may come before, between or after the
// positional arguments (`tsubame install NAME FILE --all`) and returns the
// positional ones. "--" ends the flags.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if len(args) > 0 && len(rest) < len(args) && args[len(args)-len(rest)-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// adminClient is an HTTPS client for one admin API.
type adminClient struct {
	base  string
	http  *http.Client
	token string
}

// client builds the client from the flags; needToken says whether the
// command cannot work without a token.
func (f adminFlags) client(needToken bool) (*adminClient, error) {
	base := strings.TrimSuffix(*f.addr, "/")
	if strings.HasPrefix(base, "http://") {
		return nil, fmt.Errorf("%s: the admin API speaks HTTPS only (use https:// or host:port)", base)
	}
	if !strings.Contains(base, "://") {
		base = "https://" + base
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS13}
	if *f.caFile != "" {
		pool, err := addCA(x509.NewCertPool(), *f.caFile)
		if err != nil {
			return nil, err
		}
		tc.RootCAs = pool
	}
	c := &adminClient{base: base, http: &http.Client{Transport: &http.Transport{TLSClientConfig: tc, Proxy: http.ProxyFromEnvironment}}}
	if *f.tokenFile != "" {
		b, err := os.ReadFile(*f.tokenFile)
		if err != nil {
			return nil, fmt.Errorf("--token-file: %w", err)
		}
		c.token = strings.TrimSpace(string(b))
		if c.token == "" || strings.ContainsAny(c.token, " \t\r\n") {
			return nil, fmt.Errorf("--token-file %s: not a token (one line, no spaces)", *f.tokenFile)
		}
	} else if needToken {
		return nil, fmt.Errorf("no token: pass --token-file FILE (or set $%s)", envToken)
	}
	return c, nil
}

// apiFailure is an admin API's answer other than success.
type apiFailure struct {
	status int
	msg    string
	rule   string
}

func (e *apiFailure) Error() string {
	if e.status == http.StatusUnauthorized {
		return fmt.Sprintf("%d: %s (check --token-file)", e.status, e.msg)
	}
	return fmt.Sprintf("%d: %s", e.status, e.msg)
}

// do sends one request. out, if not nil, receives a JSON success body; a
// body that is JSON but answers with a failure status is decoded too (the
// install results of a partial failure), and the failure returned.
func (c *adminClient) do(ctx context.Context, method, path string, body io.Reader, size int64, contentType string, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return err
	}
	if size >= 0 && body != nil {
		req.ContentLength = size
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		var ue x509.UnknownAuthorityError
		if errors.As(err, &ue) {
			return fmt.Errorf("%w (pass --ca with the cluster CA, ca.pem)", err)
		}
		return err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("read the answer: %w", err)
	}
	var failure *apiFailure
	if resp.StatusCode >= 300 {
		var e struct {
			Error string `json:"error"`
			Rule  string `json:"rule"`
		}
		failure = &apiFailure{status: resp.StatusCode, msg: strings.TrimSpace(string(raw))}
		if json.Unmarshal(raw, &e) == nil && e.Error != "" {
			failure.msg, failure.rule = e.Error, e.Rule
		}
	}
	if out != nil && (failure == nil || strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json")) {
		if err := json.Unmarshal(raw, out); err != nil && failure == nil {
			return fmt.Errorf("%s %s: unexpected answer: %w", method, path, err)
		}
	}
	if failure != nil {
		return failure
	}
	return nil
}

// splitList splits "a,b" into names.
func splitList(s string) []string {
	var out []string
	for _, x := range strings.Split(s, ",") {
		if x = strings.TrimSpace(x); x != "" {
			out = append(out, x)
		}
	}
	return out
}

// targetQuery turns --nodes and --all into the query string.
func targetQuery(nodes string, all bool) (string, error) {
	if nodes != "" && all {
		return "", errors.New("--nodes and --all exclude each other")
	}
	if all {
		return "?all=1", nil
	}
	if names := splitList(nodes); len(names) > 0 {
		return "?nodes=" + strings.Join(names, ","), nil
	}
	return "", nil
}

// addCA adds the PEM certificates of file (the --ca flag) to pool.
func addCA(pool *x509.CertPool, file string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("--ca: %w", err)
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("--ca %s: no PEM certificate in it", file)
	}
	return pool, nil
}
