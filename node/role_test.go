package node

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/tsubame-rt/tsubame/internal/mesh/pki"
	"github.com/tsubame-rt/tsubame/internal/mesh/transport"
	"github.com/tsubame-rt/tsubame/node/install"
)

// The probe's attack: a remove order over QUIC signed with the gateway's
// certificate. A gateway-role certificate is refused (forbidden, naming the
// role) and the component stays; a node-role one is obeyed, and the node's
// log says who ordered it.
func TestGatewayCertificateCannotRemove(t *testing.T) {
	ca := testCA(t)
	logs := &lockedBuf{}
	c := testConfig("n1")
	n := startNodeOpts(t, ca, c, map[string]string{"echo": "echo.wasm"}, func(o *Options) { o.Logger = logsLogger(logs) })
	order, _ := json.Marshal(install.RemoveOrder{Name: "echo"})
	send := func(name string, role pki.Role) error {
		tc, err := ca.IssueTLSRole(name, role)
		if err != nil {
			t.Fatal(err)
		}
		tr, err := transport.Listen(context.Background(), transport.Config{Listen: "127.0.0.1:0", TLS: tc, Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		defer tr.Close()
		_, err = tr.Request(context.Background(), n.QUICAddr(), transport.RequestRemove, order, 64<<10)
		return err
	}
	err := send("gw", pki.RoleGateway)
	var re *transport.RequestError
	if !errors.As(err, &re) || re.Status != transport.StatusForbidden || !strings.Contains(re.Msg, "gateway certificate") {
		t.Fatalf("remove order from a gateway certificate: %v, want forbidden", err)
	}
	if !holds(n, "echo") {
		t.Fatal("the gateway's remove order was obeyed")
	}
	if err := send("ops", pki.RoleOperator); err != nil {
		t.Fatalf("remove order from an operator certificate: %v", err)
	}
	if holds(n, "echo") {
		t.Fatal("the operator's remove order was not obeyed")
	}
	if out := logs.String(); !strings.Contains(out, "admin action") || !strings.Contains(out, "by=ops") || !strings.Contains(out, "role=operator") {
		t.Errorf("the log does not say who removed echo:\n%s", out)
	}
}

// lockedBuf collects log output written from several goroutines.
type lockedBuf struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func logsLogger(w io.Writer) *slog.Logger { return slog.New(slog.NewTextHandler(w, nil)) }
