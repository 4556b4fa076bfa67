// Package pki is Tsubame's cluster certificate authority: it makes the CA,
// issues node certificates, and builds the mutual-TLS configurations every
// node-to-node and gateway-to-node QUIC connection uses.
//
// A certificate's Common Name is the node's name; a peer's identity is the
// name in its verified certificate, never what it claims on the wire. Every
// certificate carries both the server and the client extended key usage,
// because every node both listens and dials.
//
// The package never touches the network and never picks an ALPN protocol
// (the transport sets it). Keys are ECDSA P-256.
package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// File names Save writes and the CLI reads in a CA directory.
const (
	CACertFile = "ca.pem"
	CAKeyFile  = "ca-key.pem"
)

// Validity periods. A CA outlives the certificates it issues; NotBefore is
// backdated so that a node whose clock lags a little still accepts a fresh
// certificate.
const (
	caValidity   = 10 * 365 * 24 * time.Hour
	certValidity = 2 * 365 * 24 * time.Hour
	backdate     = time.Hour
)

// maxName bounds a node name; it becomes a Common Name (at most 64 bytes in
// X.509) and a file name.
const maxName = 64

// CA is a cluster certificate authority: its certificate and private key.
type CA struct {
	cert    *x509.Certificate
	certPEM []byte
	key     *ecdsa.PrivateKey
}

// NewCA makes a self-signed CA named name, in memory. Save writes it out.
func NewCA(name string) (*CA, error) {
	if err := CheckName(name); err != nil {
		return nil, fmt.Errorf("new ca: %w", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("new ca: generate key: %w", err)
	}
	serial, err := serialNumber()
	if err != nil {
		return nil, fmt.Errorf("new ca: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: name, Organization: []string{"Tsubame cluster"}},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(caValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true, // node certificates only: no intermediate CAs.
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("new ca: create certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("new ca: %w", err)
	}
	return &CA{cert: cert, certPEM: pemBlock("CERTIFICATE", der), key: key}, nil
}

// LoadCA reads a CA written by Save (or by `tsubame ca init`).
func LoadCA(certFile, keyFile string) (*CA, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return nil, fmt.Errorf("load ca: %w", err)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, fmt.Errorf("load ca: %w", err)
	}
	cert, err := parseCert(certPEM)
	if err != nil {
		return nil, fmt.Errorf("load ca: %s: %w", certFile, err)
	}
	if !cert.IsCA || cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		return nil, fmt.Errorf("load ca: %s: certificate %q is not a CA certificate", certFile, cert.Subject.CommonName)
	}
	key, err := parseKey(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("load ca: %s: %w", keyFile, err)
	}
	if !key.PublicKey.Equal(cert.PublicKey) {
		return nil, fmt.Errorf("load ca: %s does not hold the private key of %s", keyFile, certFile)
	}
	return &CA{cert: cert, certPEM: certPEM, key: key}, nil
}

// Save writes the CA into dir as ca.pem (0644) and ca-key.pem (0600),
// creating dir if needed. It never overwrites an existing CA: replacing a
// cluster's CA silently would lock every node out.
func (ca *CA) Save(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("save ca: %w", err)
	}
	keyPEM, err := marshalKey(ca.key)
	if err != nil {
		return fmt.Errorf("save ca: %w", err)
	}
	certPath, keyPath := filepath.Join(dir, CACertFile), filepath.Join(dir, CAKeyFile)
	for _, p := range []string{certPath, keyPath} {
		if _, err := os.Stat(p); err == nil {
			return fmt.Errorf("save ca: %s already exists; refusing to replace a cluster's CA", p)
		}
	}
	if err := WriteNew(keyPath, keyPEM, 0o600); err != nil {
		return fmt.Errorf("save ca: %w", err)
	}
	if err := WriteNew(certPath, ca.certPEM, 0o644); err != nil {
		return fmt.Errorf("save ca: %w", err)
	}
	return nil
}

// Name is the CA's Common Name.
func (ca *CA) Name() string { return ca.cert.Subject.CommonName }

// CertPEM returns the CA certificate, which every node and gateway trusts.
func (ca *CA) CertPEM() []byte { return append([]byte(nil), ca.certPEM...) }

// Issue makes a certificate and key for the node called name, valid as both a
// TLS server and a TLS client. Its subject alternative names are the loopback
// addresses, "localhost", name itself when it is a valid DNS name, and each
// of hosts (IP addresses or DNS names): a dialer verifies the address it
// dialed against them.
func (ca *CA) Issue(name string, hosts ...string) (certPEM, keyPEM []byte, err error) {
	return ca.issue(name, RoleNode, hosts)
}

func (ca *CA) issue(name string, role Role, hosts []string) (certPEM, keyPEM []byte, err error) {
	if err := CheckName(name); err != nil {
		return nil, nil, fmt.Errorf("issue: %w", err)
	}
	tmpl, err := leafTemplate(name, hosts)
	if err == nil && role != RoleLegacy {
		tmpl.Subject.OrganizationalUnit = []string{roleOU + string(role)}
	}
	if err != nil {
		return nil, nil, fmt.Errorf("issue %s: %w", name, err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("issue %s: generate key: %w", name, err)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		return nil, nil, fmt.Errorf("issue %s: create certificate: %w", name, err)
	}
	keyPEM, err = marshalKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("issue %s: %w", name, err)
	}
	return pemBlock("CERTIFICATE", der), keyPEM, nil
}

// IssueTLS issues a certificate for name and returns the mutual-TLS
// configuration that uses it: the one-call path for `tsubame demo` and tests,
// where the CA lives in memory only.
func (ca *CA) IssueTLS(name string, hosts ...string) (*tls.Config, error) {
	certPEM, keyPEM, err := ca.Issue(name, hosts...)
	if err != nil {
		return nil, err
	}
	return TLSConfig(ca.certPEM, certPEM, keyPEM)
}

func leafTemplate(name string, hosts []string) (*x509.Certificate, error) {
	serial, err := serialNumber()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: name, Organization: []string{"Tsubame cluster"}},
		NotBefore:    now.Add(-backdate),
		NotAfter:     now.Add(certValidity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		DNSNames:     []string{"localhost"},
	}
	if validDNSName(name) && name != "localhost" {
		tmpl.DNSNames = append(tmpl.DNSNames, name)
	}
	for _, h := range hosts {
		switch {
		case h == "":
			return nil, errors.New("empty host")
		case net.ParseIP(h) != nil:
			tmpl.IPAddresses = append(tmpl.IPAddresses, net.ParseIP(h))
		case validDNSName(h):
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		default:
			return nil, fmt.Errorf("host %q is neither an IP address nor a DNS name", h)
		}
	}
	return tmpl, nil
}

// TLSConfig builds the mutual-TLS configuration of one node from PEM bytes:
// TLS 1.3 only; the node presents its certificate; peers must present a
// certificate issued by the CA in both directions
// (tls.RequireAndVerifyClientCert). NextProtos is left for the transport.
//
// The certificate is checked against the CA here, so a node configured with
// the wrong files fails at startup with a clear error instead of at its
// first connection.
func TLSConfig(caPEM, certPEM, keyPEM []byte) (*tls.Config, error) {
	caCert, err := parseCert(caPEM)
	if err != nil {
		return nil, fmt.Errorf("tls config: ca: %w", err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("tls config: node certificate and key: %w", err)
	}
	leaf := pair.Leaf
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(pair.Certificate[0]); err != nil {
			return nil, fmt.Errorf("tls config: node certificate: %w", err)
		}
	}
	pool := x509.NewCertPool()
	pool.AddCert(caCert)
	if _, err := leaf.Verify(x509.VerifyOptions{
		Roots:     pool,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}); err != nil {
		return nil, fmt.Errorf("tls config: certificate %q was not issued by CA %q for server and client use: %w",
			leaf.Subject.CommonName, caCert.Subject.CommonName, err)
	}
	if err := CheckName(leaf.Subject.CommonName); err != nil {
		return nil, fmt.Errorf("tls config: certificate common name: %w", err)
	}
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{pair},
		RootCAs:      pool,
		ClientCAs:    pool,
		ClientAuth:   tls.RequireAndVerifyClientCert,
	}, nil
}

// LoadTLSConfig is TLSConfig reading the three PEM files.
func LoadTLSConfig(caFile, certFile, keyFile string) (*tls.Config, error) {
	var b [3][]byte
	for i, f := range []string{caFile, certFile, keyFile} {
		var err error
		if b[i], err = os.ReadFile(f); err != nil {
			return nil, fmt.Errorf("tls config: %w", err)
		}
	}
	return TLSConfig(b[0], b[1], b[2])
}

// LocalName returns the node name in a configuration's own certificate.
func LocalName(c *tls.Config) (string, error) {
	leaf, err := localLeaf(c)
	if err != nil {
		return "", err
	}
	return leaf.Subject.CommonName, nil
}

func localLeaf(c *tls.Config) (*x509.Certificate, error) {
	if c == nil || len(c.Certificates) == 0 || len(c.Certificates[0].Certificate) == 0 {
		return nil, errors.New("tls config has no certificate")
	}
	leaf := c.Certificates[0].Leaf
	if leaf == nil {
		var err error
		if leaf, err = x509.ParseCertificate(c.Certificates[0].Certificate[0]); err != nil {
			return nil, fmt.Errorf("tls config certificate: %w", err)
		}
	}
	return leaf, nil
}

// PeerName returns the node name of the peer of a completed handshake: the
// Common Name of its verified certificate.
func PeerName(cs tls.ConnectionState) (string, error) {
	if len(cs.VerifiedChains) == 0 || len(cs.VerifiedChains[0]) == 0 {
		return "", errors.New("peer presented no verified certificate")
	}
	return cs.VerifiedChains[0][0].Subject.CommonName, nil
}

// CheckName reports whether name can be a node (or CA) name: 1 to 64 bytes
// of ASCII letters, digits, '.', '-' and '_', starting with a letter or a
// digit. Names become Common Names, file names and log fields, so nothing
// else is allowed.
func CheckName(name string) error {
	if name == "" {
		return errors.New("empty name")
	}
	if len(name) > maxName {
		return fmt.Errorf("name %.16q... is %d bytes, more than %d", name, len(name), maxName)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if !ok && i > 0 {
			ok = c == '.' || c == '-' || c == '_'
		}
		if !ok {
			return fmt.Errorf("name %q: character %q at %d not allowed (letters, digits, '.', '-', '_'; starting with a letter or digit)", name, c, i)
		}
	}
	return nil
}

// validDNSName accepts dot-separated labels of letters, digits and inner
// hyphens, each 1 to 63 bytes.
func validDNSName(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	label := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '.':
			if label == 0 || s[i-1] == '-' {
				return false
			}
			label = 0
			continue
		case c == '-':
			if label == 0 {
				return false
			}
		case c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9':
		default:
			return false
		}
		if label++; label > 63 {
			return false
		}
	}
	return label > 0 && s[len(s)-1] != '-'
}

// WriteNew writes data to a file that must not exist yet, with mode perm
// (the umask cannot widen it: the mode is set explicitly). It is how the CLI
// writes keys.
func WriteNew(path string, data []byte, perm os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	if err := f.Chmod(perm); err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(path)
		return err
	}
	return nil
}

func serialNumber() (*big.Int, error) {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("serial number: %w", err)
	}
	return n.Add(n, big.NewInt(1)), nil // never zero
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func marshalKey(k *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, fmt.Errorf("marshal key: %w", err)
	}
	return pemBlock("PRIVATE KEY", der), nil
}

func parseCert(b []byte) (*x509.Certificate, error) {
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, errors.New("no PEM block found")
	}
	if blk.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("PEM block is %q, want CERTIFICATE", blk.Type)
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parse certificate: %w", err)
	}
	return c, nil
}

func parseKey(b []byte) (*ecdsa.PrivateKey, error) {
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, errors.New("no PEM block found")
	}
	var (
		k   any
		err error
	)
	switch blk.Type {
	case "PRIVATE KEY":
		k, err = x509.ParsePKCS8PrivateKey(blk.Bytes)
	case "EC PRIVATE KEY":
		k, err = x509.ParseECPrivateKey(blk.Bytes)
	default:
		return nil, fmt.Errorf("PEM block is %q, want PRIVATE KEY", blk.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("parse private key: %w", err)
	}
	ek, ok := k.(*ecdsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("private key is %T, want ECDSA", k)
	}
	return ek, nil
}
