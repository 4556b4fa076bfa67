package blob

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/tsubame-rt/tsubame/abi"
	"github.com/tsubame-rt/tsubame/internal/mesh/pki"
	"github.com/tsubame-rt/tsubame/internal/mesh/transport"
	"github.com/tsubame-rt/tsubame/lp"
)

var quiet = slog.New(slog.DiscardHandler)

func proc(deadline time.Time) *lp.Process {
	p := lp.New("origin", "a", "k", nil)
	p.Deadline = deadline.UnixNano()
	return p
}

// Blobs of live processes are never dropped for room; past the limit a new
// one is refused with a LimitError that names the limit and carries
// abi.CodeLimit. Copies nobody owns go first, least recently used first.
func TestMemoryLimit(t *testing.T) {
	s := New("n1", Config{MaxBlob: 100, MaxMemory: 250}, nil, nil, quiet)
	live := proc(time.Now().Add(time.Minute))
	a := bytes.Repeat([]byte("a"), 100)
	b := bytes.Repeat([]byte("b"), 100)
	if _, err := s.Put(context.Background(), live, a); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(context.Background(), live, b); err != nil {
		t.Fatal(err)
	}
	_, err := s.Put(context.Background(), live, bytes.Repeat([]byte("c"), 100))
	var le *LimitError
	if !errors.As(err, &le) || le.Limit != 250 || le.HostCode() != abi.CodeLimit {
		t.Fatalf("third blob over the limit: %v, want a LimitError of 250 bytes", err)
	}
	if _, err := s.Put(context.Background(), live, bytes.Repeat([]byte("d"), 101)); !errors.As(err, &le) || le.What != "size" {
		t.Fatalf("blob over max_blob: %v", err)
	}
	// Once the process has left, its blobs make room for others.
	s.Release(live.ID)
	if _, err := s.Put(context.Background(), proc(time.Now().Add(time.Minute)), bytes.Repeat([]byte("c"), 100)); err != nil {
		t.Fatalf("after release: %v", err)
	}
	if st := s.Stats(); st.Bytes > 250 || st.Blobs != 2 {
		t.Fatalf("stats after eviction: %+v", st)
	}
}

// A process's blobs go when its deadline passes; Free drops them at once.
func TestFreedWithTheirProcess(t *testing.T) {
	now := time.Now()
	s := New("n1", Config{Retention: time.Hour}, nil, nil, quiet)
	s.now = func() time.Time { return now }
	p := proc(now.Add(time.Second))
	row, err := s.Put(context.Background(), p, []byte("short-lived"))
	if err != nil {
		t.Fatal(err)
	}
	if row.Holder != "n1" || !s.Has(row.Ref) {
		t.Fatalf("row %+v", row)
	}
	if n := s.Sweep(); n != 0 || !s.Has(row.Ref) {
		t.Fatalf("sweep before the deadline freed %d", n)
	}
	now = now.Add(2 * time.Second)
	if n := s.Sweep(); n != 1 || s.Has(row.Ref) {
		t.Fatalf("sweep after the deadline freed %d, blob kept %v", n, s.Has(row.Ref))
	}
	q := proc(now.Add(time.Minute))
	row, _ = s.Put(context.Background(), q, []byte("answered"))
	s.Free(q.ID)
	if s.Has(row.Ref) || s.Stats().Bytes != 0 {
		t.Fatalf("Free kept the blob: %+v", s.Stats())
	}
}

type pair struct {
	a, b   *transport.Transport
	sa, sb *Store
}

// twoMembers starts two real QUIC transports on loopback; b answers blob
// requests with h (its own store when h is nil).
func twoMembers(t *testing.T, h transport.RequestHandler) *pair {
	t.Helper()
	ca, err := pki.NewCA("test")
	if err != nil {
		t.Fatal(err)
	}
	listen := func(name string, req transport.RequestHandler) *transport.Transport {
		tlsConf, err := ca.IssueTLS(name)
		if err != nil {
			t.Fatal(err)
		}
		tr, err := transport.Listen(context.Background(), transport.Config{Listen: "127.0.0.1:0", TLS: tlsConf, Requests: req, Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { tr.Close() })
		return tr
	}
	pr := &pair{}
	addrs := func(name string) (string, bool) {
		switch name {
		case "a":
			return pr.a.Addr(), true
		case "b":
			return pr.b.Addr(), true
		}
		return "", false
	}
	pr.sa = New("a", Config{}, nil, addrs, quiet)
	pr.sb = New("b", Config{}, nil, addrs, quiet)
	pr.a = listen("a", pr.sa)
	if h == nil {
		h = pr.sb
	}
	pr.b = listen("b", h)
	pr.sa.net, pr.sb.net = pr.a, pr.b
	return pr
}

// A blob made on b is read on a: fetched once over QUIC, verified, cached;
// a second read is local.
func TestFetchFromHolder(t *testing.T) {
	pr := twoMembers(t, nil)
	p := proc(time.Now().Add(time.Minute))
	data := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	row, err := pr.sb.Put(context.Background(), p, data)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		got, err := pr.sa.Get(context.Background(), p, row)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("get: %d bytes, %v", len(got), err)
		}
	}
	if st := pr.sa.Stats(); st.Fetched != 1 || st.FetchedBytes != int64(len(data)) {
		t.Fatalf("a fetched %+v, want one fetch of %d bytes", st, len(data))
	}
	if st := pr.sb.Stats(); st.Served != 1 {
		t.Fatalf("b served %d", st.Served)
	}
	// A blob nobody has is a clear FetchError, with the unavailable code.
	missing := lp.Blob{Ref: lp.RefOf([]byte("never stored")), Holder: "b"}
	_, err = pr.sa.Get(context.Background(), p, missing)
	var fe *FetchError
	if !errors.As(err, &fe) || fe.HostCode() != abi.CodeUnavailable || fe.Mismatch {
		t.Fatalf("missing blob: %v", err)
	}
}

// A peer that answers with other bytes than the reference names is refused,
// and nothing it sent is kept.
func TestLyingPeerRefused(t *testing.T) {
	liar := transport.RequestHandlerFunc(func(ctx context.Context, from string, kind transport.RequestKind, body []byte) ([]byte, error) {
		ref, _ := lp.ParseRef(body)
		out := bytes.Repeat([]byte("x"), int(ref.Size)) // right size, wrong bytes
		return out, nil
	})
	pr := twoMembers(t, liar)
	data := []byte("the real image bytes")
	row := lp.Blob{Ref: lp.RefOf(data), Holder: "b"}
	_, err := pr.sa.Get(context.Background(), proc(time.Now().Add(time.Minute)), row)
	var fe *FetchError
	if !errors.As(err, &fe) || !fe.Mismatch || !errors.Is(err, ErrMismatch) {
		t.Fatalf("lying peer: %v, want a mismatch", err)
	}
	if pr.sa.Has(row.Ref) || pr.sa.Stats().Refused != 1 {
		t.Fatalf("refused bytes kept or not counted: %+v", pr.sa.Stats())
	}
	// A push whose bytes do not match its reference is refused as well.
	body := make([]byte, 0, putHeader+4)
	body = append(body, make([]byte, 16+8)...)
	body = row.Ref.Append(body)
	body = append(body, "lies"...)
	if _, err := pr.sb.HandleRequest(context.Background(), "a", transport.RequestBlobPut, body); err == nil {
		t.Fatal("a push with the wrong bytes was taken")
	}
}

// Handoff sends the blobs the next step reads with the process and the rest
// to the origin, and undo restores the rows when the migration fails.
func TestHandoffFollowsTheNextStep(t *testing.T) {
	pr := twoMembers(t, nil)
	p := lp.New("b", "a", "k", nil) // b is the origin
	p.Deadline = time.Now().Add(time.Minute).UnixNano()
	next, other := []byte("the next step reads this"), []byte("a guest blob nobody reads next")
	rn, _ := pr.sa.Put(context.Background(), p, next)
	ro, _ := pr.sa.Put(context.Background(), p, other)
	ro.Guest = true
	p.Entries[0].Input, p.Entries[0].InputRef = rn.Ref.Bytes(), true
	p.Blobs = []lp.Blob{rn, ro}
	undo, err := pr.sa.Handoff(context.Background(), p, "b")
	if err != nil {
		t.Fatal(err)
	}
	if p.Blobs[0].Holder != "b" || p.Blobs[1].Holder != "b" || !pr.sb.Has(rn.Ref) || !pr.sb.Has(ro.Ref) {
		t.Fatalf("after handoff to the origin: %+v", p.Blobs)
	}
	undo()
	if p.Blobs[0].Holder != "a" || p.Blobs[1].Holder != "a" {
		t.Fatalf("undo left %+v", p.Blobs)
	}
	if st := pr.sa.Stats(); st.Pushed != 2 || st.PushedBytes != int64(len(next)+len(other)) {
		t.Fatalf("pushed %+v", st)
	}
}
