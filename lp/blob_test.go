package lp

import (
	"bytes"
	"errors"
	"testing"
)

func TestRefRoundTrip(t *testing.T) {
	data := []byte("the bytes of a blob")
	r := RefOf(data)
	got, err := ParseRef(r.Bytes())
	if err != nil || got != r {
		t.Fatalf("ParseRef(Bytes) = %v, %v; want %v", got, err, r)
	}
	if !r.Verify(data) {
		t.Fatal("Verify refused the blob's own bytes")
	}
	if r.Verify(append([]byte(nil), data[:len(data)-1]...)) || r.Verify(bytes.ToUpper(data)) {
		t.Fatal("Verify accepted other bytes")
	}
	if _, err := ParseRef(r.Bytes()[:RefLen-1]); err == nil {
		t.Fatal("ParseRef took a short reference")
	}
}

// The table keeps what entries still reference and every guest blob, and
// the next step's references are its input and its finished children's
// replies.
func TestBlobTableFollowsEntries(t *testing.T) {
	in, out, guest := RefOf([]byte("input")), RefOf([]byte("output")), RefOf([]byte("guest"))
	p := New("gw", "a", "k", in.Bytes())
	p.Entries[0].InputRef = true
	p.AddBlob(Blob{Ref: in, Holder: "gw"})
	p.AddBlob(Blob{Ref: guest, Holder: "n1", Guest: true})
	p.AddBlob(Blob{Ref: guest, Holder: "n2"}) // same bytes: one row, first holder kept
	if len(p.Blobs) != 2 || p.Blobs[1].Holder != "n1" || !p.Blobs[1].Guest {
		t.Fatalf("blob table = %+v", p.Blobs)
	}
	var next []Ref
	p.NextRefs(func(r Ref) { next = append(next, r) })
	if len(next) != 1 || next[0] != in {
		t.Fatalf("next refs of the root = %v, want its input", next)
	}
	if err := p.Call("b", "k", nil, nil, Limits{}); err != nil {
		t.Fatal(err)
	}
	if err := p.ReplyRef(out); err != nil {
		t.Fatal(err)
	}
	p.AddBlob(Blob{Ref: out, Holder: "n1"})
	next = next[:0]
	p.NextRefs(func(r Ref) { next = append(next, r) })
	if len(next) != 2 || next[0] != in || next[1] != out {
		t.Fatalf("next refs after the child replied = %v, want the input and the child's reply", next)
	}
	b, err := p.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var q Process
	if err := Decode(b, Limits{}, &q); err != nil {
		t.Fatal(err)
	}
	if len(q.Blobs) != 3 || !q.Entries[1].OutputRef || !q.Entries[0].InputRef {
		t.Fatalf("decoded %+v", q)
	}
	if err := p.Reply([]byte("done")); err != nil {
		t.Fatal(err)
	}
	p.CompactBlobs()
	if len(p.Blobs) != 1 || p.Blobs[0].Ref != guest {
		t.Fatalf("after the root finished the table = %+v, want only the guest blob", p.Blobs)
	}
}

func TestDecodeRefusesBadRefs(t *testing.T) {
	p := New("gw", "a", "k", []byte("short"))
	p.Entries[0].InputRef = true
	if _, err := p.MarshalBinary(); err == nil {
		t.Fatal("encoded an input reference of 5 bytes")
	}
	p = New("gw", "a", "k", nil)
	p.Blobs = []Blob{{Ref: RefOf(nil)}}
	if _, err := p.MarshalBinary(); err == nil {
		t.Fatal("encoded a blob with no holder")
	}
	p.Blobs[0].Holder = "gw"
	b, err := p.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)-1] = 2 // Guest
	var q Process
	var de *DecodeError
	if err := Decode(b, Limits{}, &q); !errors.As(err, &de) || de.Field != "Blobs[0].Guest" {
		t.Fatalf("decode of guest byte 2: %v", err)
	}
	if err := Decode(b[:len(b)-1], Limits{MaxBlobs: 1}, &q); !errors.As(err, &de) {
		t.Fatalf("decode of a truncated blob: %v", err)
	}
}
