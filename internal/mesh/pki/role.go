package pki

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
)

// Role is what a certificate's holder may do in the cluster. It is written
// into the certificate (an OrganizationalUnit "tsubame-role:ROLE" of its
// subject), so it is signed by the CA and cannot be claimed by a peer.
type Role string

// Roles. A certificate issued before roles existed has none (RoleLegacy):
// it keeps every right a node has, and whoever meets it logs a warning
// asking for it to be reissued (docs/security.md, "Migration").
const (
	RoleNode     Role = "node"     // runs components: every cluster request
	RoleGateway  Role = "gateway"  // submits LPs and moves their blobs, nothing else
	RoleOperator Role = "operator" // administers components (install, remove, list), runs nothing
	RoleLegacy   Role = ""         // no role in the certificate: treated as a node
)

const roleOU = "tsubame-role:"

// ParseRole turns a --role argument into a Role.
func ParseRole(s string) (Role, error) {
	switch r := Role(s); r {
	case RoleNode, RoleGateway, RoleOperator:
		return r, nil
	}
	return "", fmt.Errorf("role %q: want node, gateway or operator", s)
}

// String names the role, "legacy (no role)" for RoleLegacy.
func (r Role) String() string {
	if r == RoleLegacy {
		return "legacy (no role)"
	}
	return string(r)
}

// RoleOf returns the role written in cert, RoleLegacy if none.
func RoleOf(cert *x509.Certificate) Role {
	for _, ou := range cert.Subject.OrganizationalUnit {
		if r, ok := strings.CutPrefix(ou, roleOU); ok {
			return Role(r)
		}
	}
	return RoleLegacy
}

// PeerRole returns the role in the verified certificate of a completed
// handshake.
func PeerRole(cs tls.ConnectionState) (Role, error) {
	if len(cs.VerifiedChains) == 0 || len(cs.VerifiedChains[0]) == 0 {
		return "", errors.New("peer presented no verified certificate")
	}
	return RoleOf(cs.VerifiedChains[0][0]), nil
}

// LocalRole returns the role in a TLS configuration's own certificate.
func LocalRole(c *tls.Config) (Role, error) {
	leaf, err := localLeaf(c)
	if err != nil {
		return "", err
	}
	return RoleOf(leaf), nil
}

// IssueRole is Issue for a certificate carrying role. RoleLegacy issues one
// without a role, as before roles existed (for tests of the migration).
func (ca *CA) IssueRole(name string, role Role, hosts ...string) (certPEM, keyPEM []byte, err error) {
	if _, err := ParseRole(string(role)); err != nil && role != RoleLegacy {
		return nil, nil, fmt.Errorf("issue %s: %w", name, err)
	}
	return ca.issue(name, role, hosts)
}

// IssueTLSRole is IssueTLS for a certificate carrying role.
func (ca *CA) IssueTLSRole(name string, role Role, hosts ...string) (*tls.Config, error) {
	certPEM, keyPEM, err := ca.IssueRole(name, role, hosts...)
	if err != nil {
		return nil, err
	}
	return TLSConfig(ca.certPEM, certPEM, keyPEM)
}
