package node

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/tsubame-rt/tsubame/abi"
	"github.com/tsubame-rt/tsubame/internal/mesh/pki"
	"github.com/tsubame-rt/tsubame/internal/testutil"
	"github.com/tsubame-rt/tsubame/lp"
	"github.com/tsubame-rt/tsubame/node/blob"
)

// blobOrigin is a test origin that keeps its LPs' blobs, as a gateway does.
func blobOrigin(t *testing.T, ca *pki.CA, name string, seeds ...string) (*origin, *blob.Store) {
	t.Helper()
	st := blob.New(name, blob.Config{}, nil, nil, quiet)
	return newOriginServing(t, ca, name, st, seeds...), st
}

// sendBig starts an LP whose input is a blob the origin keeps.
func sendBig(t *testing.T, o *origin, st *blob.Store, n *Node, target, kind string, input []byte) <-chan *lp.Process {
	t.Helper()
	p := lp.New(o.name, target, kind, nil)
	p.Deadline = time.Now().Add(time.Minute).UnixNano()
	row, err := st.Put(context.Background(), p, input)
	if err != nil {
		t.Fatal(err)
	}
	p.Entries[0].Input, p.Entries[0].InputRef = row.Ref.Bytes(), true
	p.Blobs = []lp.Blob{row}
	ch := o.expect(p.ID)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := o.tr.Send(ctx, n.QUICAddr(), p); err != nil {
		t.Fatal(err)
	}
	return ch
}

// A large input and every large call input and reply go by reference
// through unchanged components on three nodes: relay on n1 reads its input
// from the origin (a blob read on a node that did not make it), each call
// input and reply is handed to the node whose step reads it, the reply is
// handed to the origin before the LP returns, and the LP itself stays small.
func TestBlobsAcrossThreeNodes(t *testing.T) {
	ca := testCA(t)
	n1 := startNode(t, ca, testConfig("n1"), map[string]string{"r1": "relay.wasm"})
	n2 := startNode(t, ca, testConfig("n2", n1.GossipAddr()), map[string]string{"r2": "relay.wasm"})
	n3 := startNode(t, ca, testConfig("n3", n1.GossipAddr()), map[string]string{"echo": "echo.wasm"})
	o, ost := blobOrigin(t, ca, "origin", n1.GossipAddr())
	waitHolders(t, n1, map[string]int{"r2": 1, "echo": 1})
	waitHolders(t, n2, map[string]int{"r1": 1, "echo": 1})
	testutil.WaitFor(t, "nodes to see the origin", func() bool {
		_, ok1 := n1.cl.Peer("origin")
		_, ok3 := n3.cl.Peer("origin")
		return ok1 && ok3
	})

	payload := bytes.Repeat([]byte("tsubame "), 40<<10) // 320 KiB
	p := wait(t, sendBig(t, o, ost, n1, "r1", "get", append([]byte("r2/echo/"), payload...)))
	root := p.Root()
	if root.State != lp.StateDone {
		t.Fatalf("root %s: code %d %q", root.State, root.ErrCode, root.ErrMsg)
	}
	if !root.OutputRef {
		t.Fatalf("root reply of %d bytes came inline, want a reference", len(root.Output))
	}
	ref, _ := lp.ParseRef(root.Output)
	got, err := ost.Get(context.Background(), p, lp.Blob{Ref: ref})
	if err != nil || !bytes.Equal(got, payload) {
		t.Fatalf("the origin holds the reply: %d bytes, %v", len(got), err)
	}
	if got, want := strings.Join(traceNodes(p), " "), "n1 n2 n3 n2 n1"; got != want {
		t.Errorf("steps ran on %q, want %q", got, want)
	}
	if size := p.WireSize(); size > 4<<10 {
		t.Errorf("the LP came back %d bytes; by reference it should be small", size)
	}
	if st := n1.Blobs().Stats(); st.Fetched != 1 || st.FetchedBytes != int64(len(payload)+8) {
		t.Errorf("n1 fetched %+v, want the origin's input once", st)
	}
	// The origin took two: r2's input when r2 suspended on n2 and its
	// entry's blob had to outlive n2 (the holder rule), and the reply.
	if st := ost.Stats(); st.Served != 1 || st.Taken != 2 {
		t.Errorf("origin served %d and took %d blobs, want 1 and 2", st.Served, st.Taken)
	}
	// Nothing else was fetched: every other read found its blob handed on.
	for _, n := range []*Node{n2, n3} {
		if st := n.Blobs().Stats(); st.Fetched != 0 || st.Taken == 0 {
			t.Errorf("%s: %+v, want blobs taken at migration and none fetched", n.Name(), st)
		}
	}
}

// A node whose blob memory cannot take a step's reply fails that entry
// with abi.CodeLimit and a message naming the limit; the node keeps serving.
func TestBlobMemoryLimitFailsTheStep(t *testing.T) {
	ca := testCA(t)
	c := testConfig("n1")
	c.Blobs = blob.Config{Threshold: 1 << 10, MaxBlob: 96 << 10, MaxMemory: 128 << 10}
	n1 := startNode(t, ca, c, map[string]string{"echo": "echo.wasm"})
	o, ost := blobOrigin(t, ca, "origin", n1.GossipAddr())
	testutil.WaitFor(t, "n1 to see the origin", func() bool { _, ok := n1.cl.Peer("origin"); return ok })

	a := bytes.Repeat([]byte("a"), 80<<10)
	p := wait(t, sendBig(t, o, ost, n1, "echo", "get", a))
	if root := p.Root(); root.State != lp.StateDone {
		t.Fatalf("one 80 KiB blob within 128 KiB: %s %d %q", root.State, root.ErrCode, root.ErrMsg)
	}
	// A blob owned by a live process pins 96 KiB: the next 80 KiB input
	// fits only by dropping unowned copies, and its reply then has no room.
	live := lp.New("origin", "echo", "get", nil)
	live.Deadline = time.Now().Add(time.Minute).UnixNano()
	// (n1 lets the first LP's blobs go once the origin acknowledged it,
	// which may be just after the origin has it.)
	testutil.WaitFor(t, "room for a 96 KiB blob", func() bool {
		_, err := n1.Blobs().Put(context.Background(), live, bytes.Repeat([]byte("z"), 96<<10))
		return err == nil
	})
	p = wait(t, sendBig(t, o, ost, n1, "echo", "get", bytes.Repeat([]byte("b"), 80<<10)))
	root := p.Root()
	if root.State != lp.StateFailed || root.ErrCode != abi.CodeLimit || !strings.Contains(root.ErrMsg, "limit 131072") {
		t.Fatalf("over the blob memory limit: %s code %d %q, want code %d naming the limit", root.State, root.ErrCode, root.ErrMsg, abi.CodeLimit)
	}
	// Small requests still run.
	if p := o.run(t, n1, "echo", "get", "small"); string(p.Root().Output) != "small" {
		t.Fatalf("after the limit: %q", p.Root().Output)
	}
}
