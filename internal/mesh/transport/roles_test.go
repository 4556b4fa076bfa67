package transport

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/tsubame-rt/tsubame/internal/mesh/pki"
)

// What each certificate role may send: a gateway LPs and blob requests, an
// operator component administration and no LPs, a node (and a certificate
// issued before roles) everything. The handler sees the sender's role.
func TestRolesBoundWhatPeersMaySend(t *testing.T) {
	ca := testCA(t)
	var mu sync.Mutex
	seen := map[RequestKind]pki.Role{}
	rec := newRecorder()
	srv := start(t, ca, "srv", rec, func(c *Config) {
		c.Requests = RequestHandlerFunc(func(ctx context.Context, from string, kind RequestKind, body []byte) ([]byte, error) {
			mu.Lock()
			seen[kind] = PeerRole(ctx)
			mu.Unlock()
			return []byte("ok"), nil
		})
	})
	peers := map[pki.Role]*Transport{}
	for _, r := range []pki.Role{pki.RoleNode, pki.RoleGateway, pki.RoleOperator, pki.RoleLegacy} {
		tc, err := ca.IssueTLSRole("peer-"+string(r), r)
		if err != nil {
			t.Fatal(err)
		}
		peers[r] = start(t, ca, "peer-"+string(r), nil, func(c *Config) { c.TLS = tc })
	}

	for _, tc := range []struct {
		role    pki.Role
		lp      bool
		allowed []RequestKind
	}{
		{pki.RoleNode, true, []RequestKind{RequestModule, RequestInstall, RequestRemove, RequestComponents, RequestBlob, RequestBlobPut}},
		{pki.RoleLegacy, true, []RequestKind{RequestModule, RequestInstall, RequestRemove, RequestComponents, RequestBlob, RequestBlobPut}},
		{pki.RoleGateway, true, []RequestKind{RequestBlob, RequestBlobPut}},
		{pki.RoleOperator, false, []RequestKind{RequestModule, RequestInstall, RequestRemove, RequestComponents}},
	} {
		t.Run(tc.role.String(), func(t *testing.T) {
			tr := peers[tc.role]
			err := tr.Send(ctxT(t), srv.Addr(), testLP(64))
			var ref *Refusal
			switch {
			case tc.lp && err != nil:
				t.Errorf("LP refused: %v", err)
			case !tc.lp && (!errors.As(err, &ref) || !strings.Contains(ref.Detail, "may not send LPs")):
				t.Errorf("LP from a %s: %v, want a refusal saying it may not", tc.role, err)
			}
			for k := RequestModule; k <= RequestBlobPut; k++ {
				_, err := tr.Request(ctxT(t), srv.Addr(), k, []byte("x"), 1<<10)
				var re *RequestError
				want := false
				for _, a := range tc.allowed {
					want = want || a == k
				}
				switch {
				case want && err != nil:
					t.Errorf("%s request refused: %v", k, err)
				case want:
					mu.Lock()
					got := seen[k]
					mu.Unlock()
					if got != tc.role {
						t.Errorf("%s request: handler saw role %q, want %q", k, got, tc.role)
					}
				case !errors.As(err, &re) || re.Status != StatusForbidden || !strings.Contains(re.Msg, string(tc.role)+" certificate"):
					t.Errorf("%s request from a %s: %v, want forbidden naming the role", k, tc.role, err)
				}
			}
		})
	}
}
