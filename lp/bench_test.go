package lp

import (
	"bytes"
	"encoding/gob"
	"testing"
)

// The target: encode and decode a 4 KiB, 8-entry LP in under 5 us
// with at most 2 allocations. Compare with the baselines in the same run:
//
//	go test -run '^$' -bench 4KiB8Entries -benchmem -count 5 ./lp

// BenchmarkCodec4KiB8Entries is one migration's codec work in steady state:
// encode into the connection's buffer, decode into a reused Process.
func BenchmarkCodec4KiB8Entries(b *testing.B) {
	p := bench4KiB()
	var buf []byte
	var q Process
	b.ReportAllocs()
	for b.Loop() {
		var err error
		// Rewriting buf while q aliases it is fine here only because the
		// bytes are the same each time and q is never read.
		if buf, err = p.AppendBinary(buf[:0]); err != nil {
			b.Fatal(err)
		}
		if err := Decode(buf, Limits{}, &q); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(int64(len(buf)))
}

// BenchmarkCodec4KiB8EntriesCold allocates everything afresh: MarshalBinary
// and Decode into a new Process.
func BenchmarkCodec4KiB8EntriesCold(b *testing.B) {
	p := bench4KiB()
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		buf, err := p.MarshalBinary()
		if err != nil {
			b.Fatal(err)
		}
		q := new(Process)
		if err := Decode(buf, Limits{}, q); err != nil {
			b.Fatal(err)
		}
		n = len(buf)
	}
	b.SetBytes(int64(n))
}

func BenchmarkEncode4KiB8Entries(b *testing.B) {
	p := bench4KiB()
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if buf, err = p.AppendBinary(buf[:0]); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(int64(len(buf)))
}

func BenchmarkDecode4KiB8Entries(b *testing.B) {
	buf := mustMarshal(b, bench4KiB())
	var q Process
	b.ReportAllocs()
	b.SetBytes(int64(len(buf)))
	for b.Loop() {
		if err := Decode(buf, Limits{}, &q); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBaselineCopy4KiB8Entries is the floor: copying the encoded bytes
// once, as any transport must.
func BenchmarkBaselineCopy4KiB8Entries(b *testing.B) {
	src := mustMarshal(b, bench4KiB())
	dst := make([]byte, len(src))
	b.ReportAllocs()
	b.SetBytes(int64(len(src)))
	for b.Loop() {
		copy(dst, src)
	}
}

// gobProcess has Process's fields but not its methods, so gob encodes the
// fields itself rather than calling MarshalBinary.
type gobProcess Process

// BenchmarkBaselineGob4KiB8Entries is the standard library's alternative in
// its best case: one long-lived encoder/decoder pair, so type information
// is sent once, not per LP.
func BenchmarkBaselineGob4KiB8Entries(b *testing.B) {
	p := (*gobProcess)(bench4KiB())
	var w bytes.Buffer
	enc, dec := gob.NewEncoder(&w), gob.NewDecoder(&w)
	var q gobProcess
	if err := enc.Encode(p); err != nil { // the type information
		b.Fatal(err)
	}
	if err := dec.Decode(&q); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		if err := enc.Encode(p); err != nil {
			b.Fatal(err)
		}
		n = w.Len()
		q = gobProcess{}
		if err := dec.Decode(&q); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(int64(n))
}
