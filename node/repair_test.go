package node

import (
	"context"
	"crypto/sha256"
	"os"
	"path/filepath"
	"testing"
	"time"

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
			b, err := again.hot.store.Get(hash)
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
