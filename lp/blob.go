package lp

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
)

// Ref is the content address of a blob: the SHA-256 of its bytes and their
// length. A reference is verified on every fetch, so whoever serves it
// cannot substitute other bytes.
type Ref struct {
	Hash Hash
	Size uint64
}

// RefLen is the length of an encoded Ref: the hash, then the size as 8
// little-endian bytes. Guests see references in this form (ABI.md §9).
const RefLen = len(Hash{}) + 8

// RefOf returns the reference of data.
func RefOf(data []byte) Ref { return Ref{Hash: sha256.Sum256(data), Size: uint64(len(data))} }

// Append appends the RefLen-byte encoding of r to b.
func (r Ref) Append(b []byte) []byte {
	b = append(b, r.Hash[:]...)
	return binary.LittleEndian.AppendUint64(b, r.Size)
}

// Bytes returns the encoding of r.
func (r Ref) Bytes() []byte { return r.Append(make([]byte, 0, RefLen)) }

func (r Ref) String() string { return fmt.Sprintf("%s/%d", r.Hash.Short(), r.Size) }

// ParseRef decodes an encoded Ref.
func ParseRef(b []byte) (Ref, error) {
	if len(b) != RefLen {
		return Ref{}, fmt.Errorf("lp: a blob reference is %d bytes, got %d", RefLen, len(b))
	}
	var r Ref
	copy(r.Hash[:], b)
	r.Size = binary.LittleEndian.Uint64(b[len(r.Hash):])
	return r, nil
}

// Verify reports whether data is what r addresses.
func (r Ref) Verify(data []byte) bool {
	return uint64(len(data)) == r.Size && sha256.Sum256(data) == r.Hash
}

// Blob is one row of a Process's blob table: a blob the Process refers to
// and a member that holds its bytes. The table is how a node that did not
// make a blob knows whom to ask for it.
type Blob struct {
	Ref
	// Holder is the member that keeps the bytes for this Process: its
	// origin, or the node that holds the Process right now (ABI.md §9 and
	// docs/RATIONALE.md "Where blobs live").
	Holder string
	// Guest marks a blob the component made itself (blob_put): its
	// reference may sit in any bytes of the Process, so the row stays until
	// the Process ends. A blob the host made for a large input or reply is
	// referenced only by entries and its row goes when they no longer
	// reference it.
	Guest bool
}

// BlobRow returns the index of the row for hash h, or -1.
func (p *Process) BlobRow(h Hash) int {
	for i := range p.Blobs {
		if p.Blobs[i].Hash == h {
			return i
		}
	}
	return -1
}

// AddBlob records b in the blob table, once per hash: a second row for the
// same bytes keeps the first holder, and marks the row Guest if either is.
func (p *Process) AddBlob(b Blob) {
	if i := p.BlobRow(b.Hash); i >= 0 {
		p.Blobs[i].Guest = p.Blobs[i].Guest || b.Guest
		return
	}
	p.Blobs = append(p.Blobs, b)
}

// EntryRefs calls f with each reference an entry holds in place of its
// input or output.
func (e *Entry) EntryRefs(f func(Ref)) {
	if e.InputRef {
		if r, err := ParseRef(e.Input); err == nil {
			f(r)
		}
	}
	if e.OutputRef {
		if r, err := ParseRef(e.Output); err == nil {
			f(r)
		}
	}
}

// NextRefs calls f with the references the next step can read through its
// entry: the active entry's input and its finished children's outputs. They
// are what a migration carries along (the paper's "entries the next
// component is predicted to need"); other blobs stay where they are.
func (p *Process) NextRefs(f func(Ref)) {
	e := p.ActiveEntry()
	if e == nil {
		return
	}
	if e.InputRef {
		if r, err := ParseRef(e.Input); err == nil {
			f(r)
		}
	}
	for j := p.Active + 1; int(j) < len(p.Entries); j++ {
		c := &p.Entries[j]
		if c.Parent == p.Active && c.OutputRef {
			if r, err := ParseRef(c.Output); err == nil {
				f(r)
			}
		}
	}
}

// CompactBlobs drops the rows of host-made blobs no entry references any
// more (a finished entry's input, a consumed child's reply), so that the
// table, like the entries, is bounded by what the Process can still read.
func (p *Process) CompactBlobs() {
	if len(p.Blobs) == 0 {
		return
	}
	live := map[Hash]bool{}
	for i := range p.Entries {
		p.Entries[i].EntryRefs(func(r Ref) { live[r.Hash] = true })
	}
	out := p.Blobs[:0]
	for _, b := range p.Blobs {
		if b.Guest || live[b.Hash] {
			out = append(out, b)
		}
	}
	clear(p.Blobs[len(out):])
	p.Blobs = out
}
