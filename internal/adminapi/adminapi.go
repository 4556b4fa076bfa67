// Package adminapi is what the admin APIs of a node and of a gateway share:
// the bearer token read from its file and checked against a request, the
// TLS configuration the API is served with, and JSON answers.
//
// The token is kept only as its SHA-256 and compared in constant time
// (digests of equal length, so not even the token's length leaks through
// timing). Nothing in this package ever logs or returns the token.
package adminapi

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
)

// MinBytes is the shortest token accepted: 16 bytes, 128 bits when random
// (`openssl rand -hex 16` makes 32 characters).
const MinBytes = 16

// Token is a loaded admin token.
type Token struct{ sum [sha256.Size]byte }

// Read loads the token in path: the file's contents without surrounding
// white space, one line of at least MinBytes bytes.
func Read(path string) (*Token, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	tok := bytes.TrimSpace(b)
	if len(tok) < MinBytes {
		return nil, fmt.Errorf("%s holds %d bytes, want at least %d (try `openssl rand -hex 16`)", path, len(tok), MinBytes)
	}
	if bytes.ContainsAny(tok, " \t\r\n") {
		return nil, fmt.Errorf("%s: the token must be one line without spaces", path)
	}
	return &Token{sum: sha256.Sum256(tok)}, nil
}

// Errors Check returns; both mean 401.
var (
	ErrMissing = errors.New("missing bearer token (Authorization: Bearer TOKEN)")
	ErrWrong   = errors.New("wrong bearer token")
)

// Check verifies r's "Authorization: Bearer TOKEN" header.
func (t *Token) Check(r *http.Request) error {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if tok = strings.TrimSpace(tok); !ok || tok == "" {
		return ErrMissing
	}
	sum := sha256.Sum256([]byte(tok))
	if subtle.ConstantTimeCompare(sum[:], t.sum[:]) != 1 {
		return ErrWrong
	}
	return nil
}

// Challenge is the WWW-Authenticate value of a 401 answer.
const Challenge = `Bearer realm="tsubame"`

// ServerTLS is the TLS configuration an admin API is served with: the
// member's cluster certificate, which clients check against the cluster
// CA, and no client certificate (clients prove themselves with the token).
func ServerTLS(cluster *tls.Config) *tls.Config {
	c := cluster.Clone()
	c.ClientAuth = tls.NoClientCert
	c.NextProtos = []string{"http/1.1"}
	return c
}

// WriteJSON answers with v as indented JSON, never cached.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
