package transport

import (
	"context"
	"fmt"

	"github.com/tsubame-rt/tsubame/internal/mesh/pki"
)

// What each certificate role may send (pki.Role). A role is in the
// certificate, signed by the CA, so a peer cannot claim another. Nodes (and
// certificates issued before roles, which keep working with a warning) may
// send everything; a gateway may submit LPs and move their blobs and
// nothing else, so the internet-facing process cannot change what nodes
// run; an operator may administer components and submits no LPs.
func allowedLP(r pki.Role) bool { return r != pki.RoleOperator }

func allowedRequest(r pki.Role, k RequestKind) bool {
	switch r {
	case pki.RoleNode, pki.RoleLegacy:
		return true
	case pki.RoleGateway:
		return k == RequestBlob || k == RequestBlobPut
	case pki.RoleOperator:
		return k == RequestModule || k == RequestInstall || k == RequestRemove || k == RequestComponents
	}
	return false // a role this version does not know: nothing
}

// forbidden says why a peer may not send something.
func forbidden(c *conn, what string) string {
	return fmt.Sprintf("%s holds a %s certificate, which may not send %s (docs/security.md)", c.peer, c.role, what)
}

type roleKey struct{}

// PeerRole returns the certificate role of the peer whose REQUEST a
// RequestHandler is answering (RoleLegacy outside one).
func PeerRole(ctx context.Context) pki.Role {
	r, _ := ctx.Value(roleKey{}).(pki.Role)
	return r
}
