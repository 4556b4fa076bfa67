package node

import (
	"context"
	"errors"
	"fmt"

	"github.com/tsubame-rt/tsubame/abi"
	"github.com/tsubame-rt/tsubame/lp"

	"github.com/tsubame-rt/tsubame/internal/mesh/transport"
)

// nodeNet is the blob store's way to peers: the node's transport, which
// exists only once the node listens (no step runs before that).
type nodeNet struct{ n *Node }

func (nn nodeNet) Request(ctx context.Context, addr string, kind transport.RequestKind, body []byte, maxResp int) ([]byte, error) {
	if nn.n.tr == nil {
		return nil, errors.New("node transport not started")
	}
	return nn.n.tr.Request(ctx, addr, kind, body, maxResp)
}

// addrOf is a live member's QUIC address, node or gateway.
func (n *Node) addrOf(name string) (string, bool) {
	if n.cl == nil {
		return "", false
	}
	p, ok := n.cl.Peer(name)
	if !ok || p.Meta.QUIC == "" {
		return "", false
	}
	return p.Meta.QUIC, true
}

// blobSender is the runner's way to send an LP: the transport, after the
// LP's blobs held here have been handed on (blob.Store.Handoff), so that a
// migration never leaves a blob behind on a node the LP no longer depends
// on. The copies stay here, unowned, once the receiver owns the LP.
type blobSender struct{ n *Node }

func (bs blobSender) Send(ctx context.Context, addr string, p *lp.Process) error {
	if len(p.Blobs) == 0 {
		return bs.n.counted(p, bs.n.tr.Send(ctx, addr, p))
	}
	to, ok := bs.n.memberAt(addr)
	if !ok {
		return fmt.Errorf("hand blobs on: no live member at %s", addr)
	}
	undo, err := bs.n.blobs.Handoff(ctx, p, to)
	if err != nil {
		return fmt.Errorf("hand blobs on to %s: %w", to, err)
	}
	if err := bs.n.counted(p, bs.n.tr.Send(ctx, addr, p)); err != nil {
		undo()
		return err
	}
	bs.n.blobs.Release(p.ID)
	return nil
}

// counted adds the encoded size of p, sent without error, to the bytes of
// LPs this node has sent (SentLPBytes).
func (n *Node) counted(p *lp.Process, err error) error {
	if err == nil {
		n.lpSent.Add(int64(p.WireSize()))
	}
	return err
}

// SentLPBytes is the bytes of the LPs this node has sent to other members
// (the blobs they refer to are counted by Blobs().Stats()).
func (n *Node) SentLPBytes() int64 { return n.lpSent.Load() }

// memberAt names the live member whose QUIC address is addr.
func (n *Node) memberAt(addr string) (string, bool) {
	for _, m := range n.cl.Members() {
		if m.Meta.QUIC == addr {
			return m.Name, true
		}
	}
	return "", false
}

// resolveRoot replaces the by-reference reply of a finished LP whose origin
// is this node with its bytes (the holder rule keeps them here), and frees
// the LP's blobs: the program it is delivered to sees bytes, as a gateway's
// client does.
func (n *Node) resolveRoot(p *lp.Process) {
	defer n.blobs.Free(p.ID)
	root := p.Root()
	if root == nil || !root.OutputRef {
		return
	}
	ref, err := lp.ParseRef(root.Output)
	row := lp.Blob{Ref: ref}
	if i := p.BlobRow(ref.Hash); i >= 0 {
		row = p.Blobs[i]
	}
	var data []byte
	if err == nil {
		data, err = n.blobs.Get(context.Background(), p, row)
	}
	if err != nil {
		root.State, root.Output, root.OutputRef = lp.StateFailed, nil, false
		root.ErrCode, root.ErrMsg = abi.CodeUnavailable, "reply by reference unavailable: "+err.Error()
		return
	}
	root.Output, root.OutputRef = data, false
}
