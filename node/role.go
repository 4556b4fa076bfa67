package node

import (
	"crypto/tls"
	"fmt"
	"log/slog"

	"github.com/tsubame-rt/tsubame/internal/mesh/pki"
)

// checkRole refuses to run a node on a certificate whose role cannot do a
// node's work, and warns about one issued before roles.
func checkRole(c *tls.Config, want pki.Role, log *slog.Logger) error {
	role, err := pki.LocalRole(c)
	if err != nil {
		return err
	}
	switch role {
	case want:
		return nil
	case pki.RoleLegacy:
		log.Warn("this node's certificate has no role (issued before roles); it works as a node certificate, but reissue it with `tsubame ca issue --role node` (docs/security.md)")
		return nil
	}
	return fmt.Errorf("certificate has role %s, which cannot run a node (its peers refuse what a node must send); issue one with `tsubame ca issue --role node`", role)
}
