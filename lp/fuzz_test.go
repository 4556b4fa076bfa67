package lp

import (
	"bytes"
	"errors"
	"os"
	"testing"
)

// FuzzDecode feeds arbitrary bytes to Decode. It must never panic; a refusal
// must be a *DecodeError inside the input; an accepted input of the current
// version must be the one canonical encoding of what it decoded to
// (re-encoding gives the same bytes), and any accepted input must decode
// again to an equal Process.
//
//	go test -run '^$' -fuzz FuzzDecode -fuzztime 60s ./lp
func FuzzDecode(f *testing.F) {
	for _, p := range shapes(f) {
		b := mustMarshal(f, p)
		f.Add(b)
	}
	for _, name := range []string{"v1-full.lp", "v1-4KiB.lp"} {
		b, err := os.ReadFile("testdata/" + name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(nil))
	f.Add(header())
	f.Add(cat(header(), uv(1<<40)))
	// Tight limits let the fuzzer reach every limit check with short inputs.
	tight := Limits{MaxEntries: 8, MaxDepth: 3, MaxBytes: 64, MaxCont: 32, MaxName: 16, MaxMsg: 32, MaxTrace: 4, MaxTotal: 1024}
	f.Fuzz(func(t *testing.T, b []byte) {
		in := bytes.Clone(b)
		for _, lim := range []Limits{tight, {}} {
			var p Process
			err := Decode(b, lim, &p)
			if !bytes.Equal(b, in) {
				t.Fatal("Decode modified its input")
			}
			if err != nil {
				var de *DecodeError
				if !errors.As(err, &de) || de.Offset < 0 || de.Offset > len(b) || de.Field == "" {
					t.Fatalf("refusal %v (%T) is not a DecodeError inside the %d-byte input", err, err, len(b))
				}
				continue
			}
			enc, err := p.AppendBinary(nil)
			if err != nil {
				t.Fatalf("re-encoding a decoded process: %v", err)
			}
			if b[len(wireMagic)] == WireVersion {
				if !bytes.Equal(enc, b) {
					t.Fatalf("re-encoding differs from the accepted input:\n got %x\nwant %x", enc, b)
				}
			}
			if n := p.WireSize(); n != len(enc) {
				t.Fatalf("WireSize %d for a %d-byte encoding", n, len(enc))
			}
			var q Process
			if err := Decode(enc, lim, &q); err != nil {
				t.Fatalf("decoding a re-encoding: %v", err)
			}
			if !equalProcess(&p, &q) {
				t.Fatalf("round trip changed the process:\n got %+v\nwant %+v", q, p)
			}
		}
	})
}
