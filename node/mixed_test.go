package node

import (
	"testing"

	"github.com/tsubame-rt/tsubame/internal/testutil"
	"github.com/tsubame-rt/tsubame/lp"
)

// The mixed-language chain chain_go -> chain_rust -> chain_c -> chain_as,
// one language per node: one LP whose continuations, saved by four
// different SDKs, survive six migrations and resume where they were saved.
func TestMixedLanguageChainAcrossFourNodes(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("compiles a Go guest: slow in -short and under -race")
	}
	ca := testCA(t)
	home := map[string]string{"chain_go": "n1", "chain_rust": "n2", "chain_c": "n3", "chain_as": "n4"}
	n1 := startNode(t, ca, testConfig("n1"), map[string]string{"chain_go": "chain_go.wasm"})
	nodes := []*Node{
		n1,
		startNode(t, ca, testConfig("n2", n1.GossipAddr()), map[string]string{"chain_rust": "chain_rust.wasm"}),
		startNode(t, ca, testConfig("n3", n1.GossipAddr()), map[string]string{"chain_c": "chain_c.wasm"}),
		startNode(t, ca, testConfig("n4", n1.GossipAddr()), map[string]string{"chain_as": "chain_as.wasm"}),
	}
	o := newOrigin(t, ca, "origin", n1.GossipAddr())
	// Every node must know every other holder and the origin before the LP
	// starts: a node that has not heard a holder's report yet would rightly
	// fail the call with "no component".
	for _, n := range nodes {
		want := map[string]int{}
		for c, h := range home {
			if h != n.Name() {
				want[c] = 1
			}
		}
		waitHolders(t, n, want)
		testutil.WaitFor(t, n.Name()+" to see the origin", func() bool { _, ok := n.cl.Peer("origin"); return ok })
	}

	p := o.run(t, n1, "chain_go", "run", "hi")
	if root := p.Root(); root.State != lp.StateDone || string(root.Output) != "go(rust(c(as(hi))))" {
		t.Fatalf("root entry: %s %q (code %d %q)", root.State, root.Output, root.ErrCode, root.ErrMsg)
	}
	// go, rust, c, as, then each caller resumes: 7 steps, each on the
	// one node holding its entry's component.
	if len(p.Trace) != 7 {
		t.Fatalf("%d steps, want 7: %v", len(p.Trace), traceNodes(p))
	}
	for i, s := range p.Trace {
		if target := p.Entries[s.Entry].Target; s.Node != home[target] {
			t.Errorf("step %d (%s) ran on %s, want %s", i, target, s.Node, home[target])
		}
	}

	// A failure at the far end comes back through all four SDKs with its code.
	p = o.run(t, n1, "chain_go", "run", "fail")
	if root := p.Root(); root.State != lp.StateFailed || root.ErrCode != 502 {
		t.Fatalf("root entry: %s code %d %q, want failed with 502", root.State, root.ErrCode, root.ErrMsg)
	}
}
