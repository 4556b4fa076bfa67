package node

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tsubame-rt/tsubame/internal/adminapi"
	"github.com/tsubame-rt/tsubame/internal/mesh/cluster"
	"github.com/tsubame-rt/tsubame/internal/mesh/transport"
	"github.com/tsubame-rt/tsubame/internal/testutil"
	"github.com/tsubame-rt/tsubame/lp"
)

// A node whose store lost an installed module, or holds it with a flipped
// byte, starts anyway and fetches it again from a peer that has it; the
// manifest entry (who installed it, and how) is kept.
func TestRestartRepairsStoredModule(t *testing.T) {
	for _, tear := range []struct {
		name string
		f    func(path string) error
	}{
		{"flipped byte", func(path string) error {
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			b[len(b)/2] ^= 0x01
			return os.WriteFile(path, b, 0o600)
		}},
		{"missing", os.Remove},
	} {
		t.Run(tear.name, func(t *testing.T) {
			ca := testCA(t)
			c1 := hotConfig(t, "n1")
			n1 := startNode(t, ca, c1, nil)
			n2 := startNode(t, ca, hotConfig(t, "n2", n1.GossipAddr()), nil)
			testutil.WaitFor(t, "n1 and n2 to see each other", func() bool { _, ok := n1.cl.Peer("n2"); return ok })
			newAdminClient(t, ca, n1).install(t, "fresh", "echo.wasm", "?nodes=n1,n2")
			if !holds(n1, "fresh") || !holds(n2, "fresh") {
				t.Fatal("install did not reach both nodes")
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := n1.Shutdown(ctx); err != nil {
				t.Fatal(err)
			}
			hash := lp.Hash(sha256.Sum256(module(t, "echo.wasm")))
			if err := tear.f(filepath.Join(c1.DataDir, "modules", hash.String()+".wasm")); err != nil {
				t.Fatal(err)
			}
			c := c1
			c.Seeds = []string{n2.GossipAddr()}
			again := startNode(t, ca, c, nil)
			testutil.WaitFor(t, "the restarted node to fetch its module again", func() bool { return holds(again, "fresh") })
			b, err := again.hot.Store().Get(hash)
			if err != nil || lp.Hash(sha256.Sum256(b)) != hash {
				t.Errorf("store after repair: %v", err)
			}
			l := newAdminClient(t, ca, again).list(t, "")
			if cs := l.Nodes[0].Components; len(cs) != 1 || cs[0].Source != "upload" {
				t.Errorf("manifest after repair: %+v", cs)
			}
		})
	}
}

// An install order to a node that stops answering ends as soon as
// membership declares that node dead, not at the QUIC idle timeout, and the
// per-node results say what happened on each.
func TestInstallStopsWaitingForADeadNode(t *testing.T) {
	ca := testCA(t)
	n := startNode(t, ca, hotConfig(t, "n1"), nil)
	tlsConf, err := ca.IssueTLS("stuck")
	if err != nil {
		t.Fatal(err)
	}
	got, release := make(chan struct{}, 1), make(chan struct{})
	tr, err := transport.Listen(context.Background(), transport.Config{
		Listen: "127.0.0.1:0", TLS: tlsConf, Logger: quiet,
		Requests: transport.RequestHandlerFunc(func(ctx context.Context, from string, kind transport.RequestKind, body []byte) ([]byte, error) {
			got <- struct{}{}
			<-release // a node that hangs (SIGSTOP, a partition): QUIC stays up
			return nil, errors.New("released")
		}),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { close(release); tr.Close() })
	cl, err := cluster.Join(context.Background(), cluster.Config{Name: "stuck", Bind: "127.0.0.1:0", Seeds: []string{n.GossipAddr()}, Logger: quiet},
		func() cluster.Meta { return cluster.Meta{QUIC: tr.Addr()} })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	testutil.WaitFor(t, "n1 to see the stuck node", func() bool { _, ok := n.cl.Peer("stuck"); return ok })

	a := newAdminClient(t, ca, n)
	type answer struct {
		code int
		body []byte
	}
	done := make(chan answer, 1)
	go func() {
		code, body := a.do(t, http.MethodPut, "/v1/components/fresh?nodes=n1,stuck", module(t, "echo.wasm"))
		done <- answer{code, body}
	}()
	select {
	case <-got:
	case <-time.After(30 * time.Second):
		t.Fatal("the order never reached the stuck node")
	}
	cl.Close() // membership stops hearing from it; its QUIC side still hangs
	ans := <-done
	var res adminapi.InstallResponse
	if err := json.Unmarshal(ans.body, &res); err != nil || len(res.Results) != 2 {
		t.Fatalf("install: %d %s", ans.code, ans.body)
	}
	if r := res.Results[0]; r.Node != "n1" || !r.OK {
		t.Errorf("n1: %+v, want installed", r)
	}
	if r := res.Results[1]; r.Node != "stuck" || r.OK || !strings.Contains(r.Error, "declared dead") {
		t.Errorf("stuck: %+v, want a failure saying it was declared dead", r)
	}
}
