package cluster

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tsubame-rt/tsubame/internal/testutil"
	"github.com/tsubame-rt/tsubame/lp"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// localMeta is a Meta a test can change while the member runs.
type localMeta struct {
	mu sync.Mutex
	m  Meta
}

func (l *localMeta) get() Meta {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.m
}

func (l *localMeta) set(f func(*Meta)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	f(&l.m)
}

func comps(names ...string) []Component {
	out := make([]Component, len(names))
	for i, n := range names {
		out[i] = Component{Name: n, Hash: lp.Hash{byte(i + 1)}}
	}
	return out
}

func join(t *testing.T, name string, seeds []string, m Meta) (*Cluster, *localMeta) {
	t.Helper()
	lm := &localMeta{m: m}
	c, err := Join(context.Background(), Config{Name: name, Bind: "127.0.0.1:0", Seeds: seeds, Logger: quiet}, lm.get)
	if err != nil {
		t.Fatalf("join %s: %v", name, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c, lm
}

func names(ps []Peer) string {
	var s []string
	for _, p := range ps {
		s = append(s, p.Name)
	}
	return strings.Join(s, ",")
}

func TestMembershipAndHolders(t *testing.T) {
	a, _ := join(t, "a", nil, Meta{QUIC: "127.0.0.1:1001", Components: comps("echo", "relay"), Workers: 4})
	b, _ := join(t, "b", []string{a.Addr()}, Meta{QUIC: "127.0.0.1:1002", Components: comps("echo"), Workers: 2, Load: 0.5, Queue: 3, In: 12.5, Out: 7})
	c, lc := join(t, "c", []string{a.Addr()}, Meta{QUIC: "127.0.0.1:1003", Workers: 1})
	gw, _ := join(t, "gw", []string{b.Addr()}, Meta{QUIC: "127.0.0.1:1004", Gateway: true, Components: comps("echo")})

	testutil.WaitFor(t, "every member to see the three others fresh", func() bool {
		return len(a.Peers()) == 3 && len(b.Peers()) == 3 && len(c.Peers()) == 3 && len(gw.Peers()) == 3
	})
	if got := names(gw.Holders("echo")); got != "a,b" {
		t.Errorf("gw.Holders(echo) = %q, want a,b", got)
	}
	// A gateway never holds components, whatever it advertises.
	if got := names(c.Holders("echo")); got != "a,b" {
		t.Errorf("c.Holders(echo) = %q, want a,b (gateway excluded)", got)
	}
	if got := names(a.Holders("echo")); got != "b" {
		t.Errorf("a.Holders(echo) = %q, want b (self excluded)", got)
	}
	if got := names(c.Holders("nothing")); got != "" {
		t.Errorf("Holders(nothing) = %q", got)
	}
	p, ok := c.Peer("b")
	if !ok {
		t.Fatal("c does not know b")
	}
	if p.Meta.QUIC != "127.0.0.1:1002" || p.Meta.Load != 0.5 || p.Meta.Queue != 3 || p.Meta.Workers != 2 || p.Meta.Gateway || p.Meta.In != 12.5 || p.Meta.Out != 7 {
		t.Errorf("c sees b as %+v", p.Meta)
	}
	if p, ok := a.Peer("gw"); !ok || !p.Meta.Gateway || p.Meta.QUIC != "127.0.0.1:1004" {
		t.Errorf("a sees gw as %+v, %v", p, ok)
	}
	if p, ok := a.Peer("a"); !ok || p.Meta.QUIC != "127.0.0.1:1001" {
		t.Errorf("Peer(self) = %+v, %v", p, ok)
	}

	// Changes to local() spread with the next reports.
	lc.set(func(m *Meta) { m.Components = comps("echo"); m.Load = 1.5 })
	testutil.WaitFor(t, "c's new component to reach a", func() bool { return names(a.Holders("echo")) == "b,c" })
	if p, _ := a.Peer("c"); p.Meta.Load != 1.5 {
		t.Errorf("a sees c's load as %v, want 1.5", p.Meta.Load)
	}

	// A member that leaves drops out of everyone's view.
	if err := b.Leave(context.Background()); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, "b to drop out", func() bool {
		_, known := a.Peer("b")
		return !known && names(gw.Holders("echo")) == "a,c"
	})
}

// A member that stops reporting (crashed, or too busy to report) stops being
// a candidate within StaleAfter, before failure detection removes it.
func TestStaleReportsExcluded(t *testing.T) {
	a, _ := join(t, "a", nil, Meta{QUIC: "q-a", Components: comps("x")})
	b, _ := join(t, "b", []string{a.Addr()}, Meta{QUIC: "q-b", Components: comps("x")})
	testutil.WaitFor(t, "a to see b", func() bool { return len(a.Holders("x")) == 1 })
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, "b to go stale at a", func() bool { return len(a.Holders("x")) == 0 && len(a.Peers()) == 0 })
	testutil.WaitFor(t, "failure detection to remove b", func() bool { _, ok := a.Peer("b"); return !ok })
}

// A component list too large for one UDP report travels over the reliable
// channel, and a change of it reaches the others.
func TestLargeComponentList(t *testing.T) {
	var many []string
	for i := range 60 {
		many = append(many, fmt.Sprintf("component-with-a-long-name-%02d", i))
	}
	a, la := join(t, "a", nil, Meta{QUIC: "q-a", Components: comps(many...)})
	if n := len((&report{Components: comps(many...)}).append(nil, true)); n <= maxInlineReport {
		t.Fatalf("test list encodes to %d bytes, want > %d", n, maxInlineReport)
	}
	b, _ := join(t, "b", []string{a.Addr()}, Meta{QUIC: "q-b"})
	testutil.WaitFor(t, "b to learn a's 60 components", func() bool {
		p, ok := b.Peer("a")
		return ok && len(p.Meta.Components) == 60 && len(b.Holders(many[59])) == 1
	})
	la.set(func(m *Meta) { m.Components = comps(append([]string{"zz-new"}, many...)...) })
	testutil.WaitFor(t, "b to learn a's new list", func() bool { return len(b.Holders("zz-new")) == 1 })
}

func TestSeedUnreachableThenRetry(t *testing.T) {
	// A seed that is not up yet: the member runs alone and joins later.
	a, _ := join(t, "a", nil, Meta{QUIC: "q-a"})
	addr := a.Addr()
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	lm := &localMeta{m: Meta{QUIC: "q-b"}}
	b, err := Join(context.Background(), Config{Name: "b", Bind: "127.0.0.1:0", Seeds: []string{addr}, RejoinRetry: 50 * time.Millisecond, Logger: quiet}, lm.get)
	if err != nil {
		t.Fatalf("join with an unreachable seed: %v", err)
	}
	t.Cleanup(func() { _ = b.Close() })
	// Bring a member up on the seed's address.
	lm2 := &localMeta{m: Meta{QUIC: "q-a2"}}
	a2, err := Join(context.Background(), Config{Name: "a2", Bind: addr, Logger: quiet}, lm2.get)
	if err != nil {
		t.Skipf("could not rebind %s: %v", addr, err)
	}
	t.Cleanup(func() { _ = a2.Close() })
	testutil.WaitFor(t, "b to join through the retried seed", func() bool { _, ok := b.Peer("a2"); return ok })
}

func TestJoinErrors(t *testing.T) {
	if _, err := Join(context.Background(), Config{Bind: "127.0.0.1:0"}, func() Meta { return Meta{} }); err == nil {
		t.Error("Join accepted an empty name")
	}
	if _, err := Join(context.Background(), Config{Name: "x", Bind: "nonsense"}, func() Meta { return Meta{} }); err == nil || !strings.Contains(err.Error(), "nonsense") {
		t.Errorf("bad bind address: %v", err)
	}
}

func TestReportRoundTrip(t *testing.T) {
	r := &report{Name: "n1", Epoch: 7, Seq: 9, Load: 0.75, Queue: 5, Workers: 8, Components: comps("a", "b")}
	r.Digest = digest(r.Components)
	got, err := decodeReport(r.append(nil, true))
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != "n1" || got.Seq != 9 || got.Load != 0.75 || got.Queue != 5 || got.Workers != 8 || !got.HasComps || len(got.Components) != 2 || got.Components[1] != r.Components[1] {
		t.Errorf("round trip: %+v", got)
	}
	light, err := decodeReport(r.append(nil, false))
	if err != nil || light.HasComps || light.Digest != r.Digest {
		t.Errorf("light report: %+v, %v", light, err)
	}
	m, err := decodeMeta(nodeMeta{QUIC: "127.0.0.1:4433", Gateway: true}.encode())
	if err != nil || m.QUIC != "127.0.0.1:4433" || !m.Gateway {
		t.Errorf("meta round trip: %+v, %v", m, err)
	}
}

// Every truncation and a few corruptions of a valid report are rejected
// without a panic.
func TestReportMalformed(t *testing.T) {
	r := &report{Name: "n1", Load: 0.5, Components: comps("a")}
	r.Digest = digest(r.Components)
	b := r.append(nil, true)
	for i := range b {
		if _, err := decodeReport(b[:i]); err == nil {
			t.Errorf("truncated to %d bytes: accepted", i)
		}
	}
	bad := append([]byte(nil), b...)
	bad[len(bad)-1] ^= 0xff // hash byte: digest mismatch
	if _, err := decodeReport(bad); err == nil {
		t.Error("digest mismatch accepted")
	}
	nan := &report{Name: "n", Load: -1}
	if _, err := decodeReport(nan.append(nil, false)); err == nil {
		t.Error("negative load accepted")
	}
}

func FuzzDecodeReport(f *testing.F) {
	r := &report{Name: "n1", Load: 0.5, Components: comps("a", "b")}
	r.Digest = digest(r.Components)
	f.Add(r.append(nil, true))
	f.Add(r.append(nil, false))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = decodeReport(b)
		_, _ = decodeMeta(b)
	})
}

// A member restarted under its name and address with no seeds of its own is
// back in every view, whether it crashed or left and whether the others
// noticed before it came back: the bootstrap member everyone lists (found
// again through their seeds), and a member nobody lists (found again because
// the others retry members they saw fail or leave, as after a partition).
func TestRestartedSeedlessMemberRejoins(t *testing.T) {
	for _, tc := range []struct {
		name        string
		who         int // 0: a, the seed of b and c; 2: c, a seed of none
		stop        func(*Cluster) error
		waitNoticed bool
	}{
		{"seed/leave", 0, func(c *Cluster) error { return c.Leave(context.Background()) }, true},
		{"seed/crash", 0, (*Cluster).Close, true},
		{"seed/crash-restart-before-detection", 0, (*Cluster).Close, false},
		{"unlisted/leave", 2, func(c *Cluster) error { return c.Leave(context.Background()) }, true},
		{"unlisted/crash", 2, (*Cluster).Close, true},
		{"unlisted/crash-restart-before-detection", 2, (*Cluster).Close, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, _ := join(t, "a", nil, Meta{QUIC: "q-a"})
			b, _ := join(t, "b", []string{a.Addr()}, Meta{QUIC: "q-b"})
			c, _ := join(t, "c", []string{a.Addr()}, Meta{QUIC: "q-c"})
			ms := []*Cluster{a, b, c}
			all := func() bool {
				for _, x := range ms {
					if len(x.Peers()) != len(ms)-1 {
						return false
					}
				}
				return true
			}
			testutil.WaitFor(t, "three members to see each other", all)
			old := ms[tc.who]
			name, addr := old.Name(), old.Addr()
			if err := tc.stop(old); err != nil {
				t.Fatal(err)
			}
			others := slices.Delete(slices.Clone(ms), tc.who, tc.who+1)
			if tc.waitNoticed {
				testutil.WaitFor(t, "the others to drop "+name, func() bool {
					for _, x := range others {
						if _, ok := x.Peer(name); ok {
							return false
						}
					}
					return true
				})
			}
			lm := &localMeta{m: Meta{QUIC: "q-new"}}
			restarted, err := Join(context.Background(), Config{Name: name, Bind: addr, Logger: quiet}, lm.get)
			if err != nil {
				t.Skipf("could not rebind %s: %v", addr, err)
			}
			t.Cleanup(func() { _ = restarted.Close() })
			ms[tc.who] = restarted
			testutil.WaitFor(t, "the restarted "+name+" to be back in every view", func() bool {
				for _, x := range others {
					if p, ok := x.Peer(name); !ok || p.Meta.QUIC != "q-new" {
						return false
					}
				}
				return all()
			})
		})
	}
}
