package transport

import (
	"fmt"
	"io"
	"sync"
	"time"
)

// Memory for incoming frames. A frame's payload is read into memory before
// it is decoded and handed on, so a peer holding a valid certificate could
// otherwise make a node hold (streams per connection x MaxFrame) bytes per
// connection: 32 streams of 16 MiB garbage took a node from 97 MB to 1.5 GB.
//
// A frame larger than smallFrame must first reserve its declared length
// from its connection's budget and from the transport's, before a byte of
// its payload is read; the reservation is returned once the frame is
// decoded and handed on (or refused). Within a frame, QUIC flow control
// paces the sender to the reader. A frame that cannot reserve within
// budgetWait is answered with ERROR ErrMemory and its stream reset, which
// hands its flow-control credit back: a frame left waiting unread would
// hold part of the connection's receive window, and enough of them would
// stall the very frames whose completion returns memory. Reserving the
// whole declared length up front (not as bytes arrive) means two half-read
// frames can never wait on each other.
//
// Frames up to smallFrame (every ordinary LP) skip the budget: their memory
// is bounded by the streams a connection may open (maxIncomingStreams) and
// they stay off any lock.
const smallFrame = 64 << 10

// budgetWait is how long a large frame waits for frame memory before it is
// refused: enough to ride out a burst, short enough that waiting streams do
// not hold the connection's receive window for long.
const budgetWait = 100 * time.Millisecond

// Defaults for Config.FrameMemory and Config.FrameMemoryPerConn.
const (
	DefaultFrameMemory        = 256 << 20
	DefaultFrameMemoryPerConn = 64 << 20
)

// budget is the transport's frame memory and every connection's share.
type budget struct {
	mu      sync.Mutex
	avail   int64
	perConn int64
	total   int64
	peak    int64         // most ever reserved at once, for tests
	wake    chan struct{} // closed and replaced when memory is returned
}

func newBudget(total, perConn int) *budget {
	return &budget{avail: int64(total), total: int64(total), perConn: int64(perConn), wake: make(chan struct{})}
}

// reserve takes n bytes for c, waiting at most timeout (or until done is
// closed: the stream or connection ended).
func (b *budget) reserve(c *conn, n int, timeout time.Duration, done <-chan struct{}) error {
	var timer *time.Timer
	for {
		b.mu.Lock()
		if b.avail >= int64(n) && c.frameMem+int64(n) <= b.perConn {
			b.avail -= int64(n)
			c.frameMem += int64(n)
			b.peak = max(b.peak, b.total-b.avail)
			b.mu.Unlock()
			if timer != nil {
				timer.Stop()
			}
			return nil
		}
		wake := b.wake
		inUse := c.frameMem
		b.mu.Unlock()
		if timer == nil {
			timer = time.NewTimer(timeout)
		}
		select {
		case <-wake:
		case <-done:
			timer.Stop()
			return fmt.Errorf("stream ended while a %d-byte frame waited for memory", n)
		case <-timer.C:
			return &wireError{ErrMemory, fmt.Sprintf("a %d-byte frame waited %v for frame memory (this connection holds %d of its %d bytes; the node's budget is shared by all)",
				n, timeout, inUse, b.perConn)}
		}
	}
}

// release returns n bytes reserved for c.
func (b *budget) release(c *conn, n int) {
	b.mu.Lock()
	b.avail += int64(n)
	c.frameMem -= int64(n)
	close(b.wake)
	b.wake = make(chan struct{})
	b.mu.Unlock()
}

// readFrame reads an n-byte payload, reserving memory for it first when it
// is large; the caller calls the returned release once the payload is
// handed on (it is never nil).
func (t *Transport) readFrame(c *conn, r io.Reader, n int, done <-chan struct{}) ([]byte, func(), error) {
	if n <= smallFrame {
		buf, err := readPayload(r, n)
		return buf, func() {}, err
	}
	if err := t.mem.reserve(c, n, min(budgetWait, t.cfg.Timeout), done); err != nil {
		return nil, func() {}, err
	}
	// The budget covers n, so the buffer is made once at its size rather
	// than grown (growing by doubling leaves twice n behind as garbage).
	buf := make([]byte, n)
	_, err := io.ReadFull(r, buf)
	return buf, func() { t.mem.release(c, n) }, err
}
