package transport

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/binary"
	"sync"
	"testing"
	"time"
)

// A peer with a valid certificate sending many large garbage frames at
// once makes the receiver hold at most its frame memory budget: the frames
// over it wait unread (QUIC flow control holds the sender back) and are
// answered once memory is returned. Small LPs from another peer are not held
// up by it.
func TestFrameMemoryBudget(t *testing.T) {
	ca := testCA(t)
	const frame, budget = 4 << 20, 12 << 20
	rec := newRecorder()
	srv := start(t, ca, "srv", rec, func(c *Config) {
		c.MaxFrame = frame + FrameSlack
		c.FrameMemory, c.FrameMemoryPerConn = budget, budget
		c.Timeout = 60 * time.Second
	})
	cli := start(t, ca, "cli", nil, func(c *Config) { c.Timeout = 60 * time.Second })
	if err := cli.Send(ctxT(t), srv.Addr(), testLP(1024)); err != nil { // connected before the attack
		t.Fatal(err)
	}
	qc, err := rawClient(t, srv, nodeTLS(t, ca, "attacker"))
	if err != nil {
		t.Fatal(err)
	}
	garbage := make([]byte, frame)
	rand.Read(garbage)
	hdr := binary.AppendUvarint([]byte{byte(frameLP)}, frame)
	const streams = 16
	codes := make(chan ErrorCode, streams)
	var wg sync.WaitGroup
	for range streams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			s, err := qc.OpenStreamSync(ctx)
			if err != nil {
				t.Error(err)
				return
			}
			_ = s.SetDeadline(time.Now().Add(60 * time.Second))
			go func() { _, _ = s.Write(append(hdr[:len(hdr):len(hdr)], garbage...)) }()
			typ, payload, err := readFrame(bufio.NewReader(s), maxResponse)
			if err != nil || typ != frameError || len(payload) == 0 {
				t.Errorf("answer to a garbage frame: %v %q %v, want ERROR", typ, payload, err)
				return
			}
			codes <- ErrorCode(payload[0])
		}()
	}
	// Meanwhile an ordinary LP from another peer goes through.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := cli.Send(ctx, srv.Addr(), testLP(1024)); err != nil {
		t.Errorf("a small LP during the attack: %v", err)
	}
	wg.Wait()
	close(codes)
	bad := 0
	for c := range codes {
		if c == ErrBadLP {
			bad++
		} else if c != ErrMemory {
			t.Errorf("garbage frame answered with %v", c)
		}
	}
	if bad == 0 {
		t.Error("no garbage frame was read and refused as a bad LP")
	}
	srv.mem.mu.Lock()
	peak, left := srv.mem.peak, srv.mem.avail
	srv.mem.mu.Unlock()
	if peak > budget || peak < frame {
		t.Errorf("peak frame memory %d, want %d to %d", peak, frame, budget)
	}
	if left != budget {
		t.Errorf("%d bytes of frame memory not returned", budget-left)
	}
}
