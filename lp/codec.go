package lp

import (
	"encoding"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"slices"
	"strconv"
	"strings"
	"unsafe"
)

// Wire format, version 3. Version 2 (read, never written) is the same
// without an Entry's Refs byte and without the blob table; version 1 is
// version 2 without TraceContext and without a Step's Start, WaitMicros and
// Next.
//
// An encoded Process is a byte string; the transport frames it, so it carries
// no overall length. Notation:
//
//	uvarint  unsigned LEB128 as encoding/binary's Uvarint reads it, in its
//	         shortest form only (a padded form is an error, so every Process
//	         has exactly one encoding and decode∘encode is the identity)
//	svarint  the zig-zag signed form (encoding/binary's Varint), shortest only
//	u32      a uvarint that must fit in 32 bits
//	index    a uvarint holding index+1, so that 0 means NoEntry
//	bytes    a uvarint length n, then n bytes; n = 0 decodes as nil
//	string   like bytes; any byte values (UTF-8 is not checked)
//
// Process, in this order, with nothing after it:
//
//	magic         4 bytes   "TSLP"
//	version       1 byte    WireVersion; any other value is refused
//	ID            16 bytes
//	Origin        string    ≤ MaxName bytes
//	Attempt       u32
//	Deadline      svarint   Unix nanoseconds, 0 = none
//	TraceDropped  u32
//	TraceContext  see below
//	entry count   uvarint   1 ≤ n ≤ MaxEntries
//	Active        index     0 (finished) or 1..n
//	entries       n × Entry, the root first
//	trace count   uvarint   ≤ MaxTrace
//	trace         trace count × Step, oldest first
//	blob count    uvarint   ≤ MaxBlobs
//	blobs         blob count × Blob
//
// Entry (entry number i, from 0):
//
//	Parent   index     0 for the root (i = 0) only; otherwise 1..i, so a
//	                   parent always precedes its children
//	State    1 byte    1 ready, 2 waiting, 3 done, 4 failed
//	Refs     1 byte    bit 0: Input is a Ref; bit 1: Output is a Ref; other
//	                   bits zero. A Ref field holds exactly RefLen bytes.
//	Steps    u32
//	Module   32 bytes  SHA-256 of the module; all zero before the first step
//	Target   string    ≤ MaxName bytes
//	Kind     string    ≤ MaxName bytes
//	Input    bytes     ≤ MaxBytes
//	Cont     bytes     ≤ MaxCont
//	ErrCode  u32
//	Output   bytes     ≤ MaxBytes
//	ErrMsg   string    ≤ MaxMsg bytes
//
// TraceContext:
//
//	present  1 byte    0: no trace context, nothing follows; 1: these follow
//	TraceID  16 bytes  not all zero
//	SpanID   8 bytes   not all zero
//	Flags    1 byte
//	State    string    ≤ MaxTraceState bytes
//
// Blob:
//
//	Hash     32 bytes  SHA-256 of the blob
//	Size     uvarint
//	Holder   string    1..MaxName bytes
//	Guest    1 byte    0 or 1
//
// Step:
//
//	Node        string    ≤ MaxName bytes
//	Entry       svarint   must fit in int32
//	Outcome     1 byte    1 reply, 2 call, 3 fail
//	Micros      u32
//	Start       svarint   Unix microseconds
//	WaitMicros  u32
//	Next        1 byte    0 none … 5 return (Move)
//
// The whole encoding is at most MaxTotal bytes, and the decoded Process must
// pass Validate and have an active chain no deeper than MaxDepth. Any change
// to this layout bumps WireVersion.

// WireVersion is the version of the binary encoding this package writes.
// It reads this version and every earlier one (MinWireVersion on), so that
// nodes of the previous release still understand each other's LPs. The
// format is specified at the top of codec.go.
const WireVersion = 3

// MinWireVersion is the oldest encoding Decode reads.
const MinWireVersion = 1

const wireMagic = "TSLP"

// The smallest encodings of an Entry and a Step: every length zero, every
// varint one byte. A count is checked against them before anything is
// allocated for it, so a short input cannot make the decoder allocate much.
const (
	minEntryWire  = 3 + len(Hash{}) + 7
	minStepWireV1 = 4
	minStepWire   = minStepWireV1 + 3
	minBlobWire   = len(Hash{}) + 3
)

// Bits of an entry's Refs byte.
const (
	refInput  = 1 << 0
	refOutput = 1 << 1
)

var (
	_ encoding.BinaryAppender    = (*Process)(nil)
	_ encoding.BinaryMarshaler   = (*Process)(nil)
	_ encoding.BinaryUnmarshaler = (*Process)(nil)
)

// DecodeError says where and why an encoding was refused. Err is a
// *LimitError when a limit was exceeded.
type DecodeError struct {
	Offset int    // byte offset of the field in the input
	Field  string // e.g. "Origin", "Entries[3].Input", "Trace[0].Outcome", "magic"
	Err    error
}

func (e *DecodeError) Error() string {
	// The wrapped errors come from this package and carry its prefix already.
	return fmt.Sprintf("lp: decode %s at byte %d: %s", e.Field, e.Offset, strings.TrimPrefix(e.Err.Error(), "lp: "))
}

func (e *DecodeError) Unwrap() error { return e.Err }

var (
	errTruncated = errors.New("unexpected end of input")
	errOverflow  = errors.New("varint overflows 64 bits")
	errPadded    = errors.New("varint is not in its shortest form")
)

// AppendBinary appends the encoding of p to b. It refuses (returning b and
// the error) a Process that fails Validate or holds an unknown trace outcome,
// so that a sender finds its own bug instead of the receiver refusing it. It
// does not apply Limits: those are the receiver's to choose.
func (p *Process) AppendBinary(b []byte) ([]byte, error) {
	if err := p.Validate(); err != nil {
		return b, err
	}
	for i := range p.Trace {
		if o := p.Trace[i].Outcome; o < OutcomeReply || o > OutcomeFail {
			return b, fmt.Errorf("lp: trace step %d has unknown %s", i, o)
		}
		if m := p.Trace[i].Next; m > maxMove {
			return b, fmt.Errorf("lp: trace step %d has unknown %s", i, m)
		}
	}
	return p.appendWire(b), nil
}

// appendWire encodes p without checking it; p must be representable (states
// and outcomes in range, indexes at least NoEntry), which Validate ensures.
func (p *Process) appendWire(b []byte) []byte {
	b = slices.Grow(b, p.WireSize())
	b = append(b, wireMagic...)
	b = append(b, WireVersion)
	b = append(b, p.ID[:]...)
	b = appendString(b, p.Origin)
	b = binary.AppendUvarint(b, uint64(p.Attempt))
	b = binary.AppendVarint(b, p.Deadline)
	b = binary.AppendUvarint(b, uint64(p.TraceDropped))
	if tc := &p.TraceContext; tc.IsZero() {
		b = append(b, 0)
	} else {
		b = append(b, 1)
		b = append(b, tc.TraceID[:]...)
		b = append(b, tc.SpanID[:]...)
		b = append(b, tc.Flags)
		b = appendString(b, tc.State)
	}
	b = binary.AppendUvarint(b, uint64(len(p.Entries)))
	b = binary.AppendUvarint(b, uint64(p.Active+1))
	for i := range p.Entries {
		e := &p.Entries[i]
		b = binary.AppendUvarint(b, uint64(e.Parent+1))
		b = append(b, byte(e.State), e.refBits())
		b = binary.AppendUvarint(b, uint64(e.Steps))
		b = append(b, e.Module[:]...)
		b = appendString(b, e.Target)
		b = appendString(b, e.Kind)
		b = appendString(b, e.Input)
		b = appendString(b, e.Cont)
		b = binary.AppendUvarint(b, uint64(e.ErrCode))
		b = appendString(b, e.Output)
		b = appendString(b, e.ErrMsg)
	}
	b = binary.AppendUvarint(b, uint64(len(p.Trace)))
	for i := range p.Trace {
		s := &p.Trace[i]
		b = appendString(b, s.Node)
		b = binary.AppendVarint(b, int64(s.Entry))
		b = append(b, byte(s.Outcome))
		b = binary.AppendUvarint(b, uint64(s.Micros))
		b = binary.AppendVarint(b, s.Start)
		b = binary.AppendUvarint(b, uint64(s.WaitMicros))
		b = append(b, byte(s.Next))
	}
	b = binary.AppendUvarint(b, uint64(len(p.Blobs)))
	for i := range p.Blobs {
		bl := &p.Blobs[i]
		b = append(b, bl.Hash[:]...)
		b = binary.AppendUvarint(b, bl.Size)
		b = appendString(b, bl.Holder)
		b = append(b, boolByte(bl.Guest))
	}
	return b
}

func (e *Entry) refBits() byte {
	var v byte
	if e.InputRef {
		v |= refInput
	}
	if e.OutputRef {
		v |= refOutput
	}
	return v
}

func boolByte(v bool) byte {
	if v {
		return 1
	}
	return 0
}

// MarshalBinary returns the encoding of p in a buffer of exactly its size.
func (p *Process) MarshalBinary() ([]byte, error) { return p.AppendBinary(nil) }

// UnmarshalBinary decodes b into p under DefaultLimits. Unlike Decode it
// copies b first, as encoding.BinaryUnmarshaler requires of it: generic
// callers (encoding/gob among them) reuse their buffers.
func (p *Process) UnmarshalBinary(b []byte) error {
	if len(b) > DefaultLimits.MaxTotal {
		// Refuse before copying, so an oversized input costs nothing.
		return Decode(b, DefaultLimits, p)
	}
	return Decode(slices.Clone(b), DefaultLimits, p)
}

// Decode decodes b into p, checking every length and count against lim
// (zero fields take DefaultLimits) and against the bytes left before using
// it, then checks the result with Validate. It overwrites all of p, reusing
// the backing arrays of p.Entries and p.Trace when they are large enough.
// On error p holds a partial decode and must not be used (decoding into it
// again is fine). Errors are *DecodeError.
//
// Decode does not copy: every []byte and string in p points into b. So b
// must not be modified or reused while p, or any string or slice taken from
// it, is in use: a string that changes under its holder breaks Go's own
// guarantees (map keys, for one). Copy b first (bytes.Clone) if it will be
// reused. Decoded byte slices have their capacity cut at their length, so
// appending to one reallocates rather than overwriting the bytes after it.
func Decode(b []byte, lim Limits, p *Process) error {
	lim = lim.orDefault()
	if len(b) > lim.MaxTotal {
		return &DecodeError{Field: "process", Err: &LimitError{What: "encoded bytes", Got: len(b), Limit: lim.MaxTotal}}
	}
	d := decoder{b: b}
	if magic := d.fixed("magic", len(wireMagic)); d.err == nil && string(magic) != wireMagic {
		d.fail("magic", 0, fmt.Errorf("got % x, want %q: not an lp encoding", magic, wireMagic))
	}
	if d.version = d.u8("version"); d.err == nil && (d.version < MinWireVersion || d.version > WireVersion) {
		d.fail("version", len(wireMagic), fmt.Errorf("unsupported wire version %d, this build reads %d to %d", d.version, MinWireVersion, WireVersion))
	}
	copy(p.ID[:], d.fixed("ID", len(p.ID)))
	p.Origin = d.str("Origin", lim.MaxName, "origin bytes")
	p.Attempt = d.u32("Attempt")
	p.Deadline = d.varint("Deadline")
	p.TraceDropped = d.u32("TraceDropped")
	d.traceContext(&p.TraceContext)
	countAt := d.off
	n := d.count("entry count", lim.MaxEntries, "entries", minEntryWire)
	if d.err == nil && n == 0 {
		d.fail("entry count", countAt, errors.New("a process needs at least one entry"))
	}
	activeAt := d.off
	if active := d.uvarint("Active"); active > uint64(n) {
		d.fail("Active", activeAt, fmt.Errorf("active entry %d out of range [-1,%d)", active-1, n))
	} else {
		p.Active = int32(active) - 1
	}
	if d.err != nil {
		return d.err // before anything is allocated for n entries
	}

	entriesAt := d.off
	p.Entries = resize(p.Entries, n)
	d.section = "Entries"
	for i := range p.Entries {
		d.index = i
		if d.entry(&p.Entries[i], i, lim); d.err != nil {
			return d.err
		}
	}
	d.section = ""

	minStep := minStepWire
	if d.version == 1 {
		minStep = minStepWireV1
	}
	t := d.count("trace count", lim.MaxTrace, "trace steps", minStep)
	if d.err != nil {
		return d.err
	}
	p.Trace = resize(p.Trace, t)
	d.section = "Trace"
	for i := range p.Trace {
		d.index = i
		if d.step(&p.Trace[i], lim); d.err != nil {
			return d.err
		}
	}
	d.section = ""

	p.Blobs = resize(p.Blobs, 0)
	if d.version >= 3 {
		nb := d.count("blob count", lim.MaxBlobs, "blobs", minBlobWire)
		if d.err != nil {
			return d.err
		}
		p.Blobs = resize(p.Blobs, nb)
		d.section = "Blobs"
		for i := range p.Blobs {
			d.index = i
			if d.blob(&p.Blobs[i], lim); d.err != nil {
				return d.err
			}
		}
		d.section = ""
	}

	if d.off != len(b) {
		return &DecodeError{Offset: d.off, Field: "end", Err: fmt.Errorf("%d trailing bytes", len(b)-d.off)}
	}
	if err := p.Validate(); err != nil {
		return &DecodeError{Offset: entriesAt, Field: "Entries", Err: err}
	}
	if depth := p.Depth(); depth > lim.MaxDepth {
		return &DecodeError{Offset: activeAt, Field: "Active", Err: &LimitError{What: "call depth", Got: depth, Limit: lim.MaxDepth}}
	}
	return nil
}

// resize returns s with length n, reusing its backing array when it is large
// enough. The elements dropped from the old length are zeroed so that they
// stop pinning an earlier input buffer.
func resize[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	if len(s) > n {
		clear(s[n:])
	}
	return s[:n]
}

// decoder reads b from off. The first failure is kept in err and moves off
// to the end, so every later read fails fast and returns a zero value: the
// callers check err once per entry rather than after every field. section
// and index name the entry or step being read; field names are built only
// when a failure happens.
type decoder struct {
	b       []byte
	off     int
	err     error
	section string
	index   int
	version byte
}

func (d *decoder) fail(field string, at int, err error) {
	if d.err != nil {
		return
	}
	if d.section != "" {
		field = d.section + "[" + strconv.Itoa(d.index) + "]." + field
	}
	d.err = &DecodeError{Offset: at, Field: field, Err: err}
	d.off = len(d.b)
}

var zeros [32]byte

func (d *decoder) left() int { return len(d.b) - d.off }

// fixed returns the next n bytes (n ≤ 32), or zeros after a failure so
// that callers may convert the result to an array.
func (d *decoder) fixed(field string, n int) []byte {
	if d.left() < n {
		d.fail(field, d.off, errTruncated)
		return zeros[:n]
	}
	d.off += n
	return d.b[d.off-n : d.off]
}

func (d *decoder) u8(field string) byte {
	if i := d.off; i < len(d.b) {
		d.off = i + 1
		return d.b[i]
	}
	d.fail(field, d.off, errTruncated)
	return 0
}

// uvarint is split so that the common one-byte case inlines.
func (d *decoder) uvarint(field string) uint64 {
	if i := d.off; i < len(d.b) && d.b[i] < 0x80 {
		d.off = i + 1
		return uint64(d.b[i])
	}
	return d.uvarintLong(field)
}

func (d *decoder) uvarintLong(field string) uint64 {
	v, n := binary.Uvarint(d.b[d.off:])
	switch {
	case n == 0:
		d.fail(field, d.off, errTruncated)
	case n < 0:
		d.fail(field, d.off, errOverflow)
	case d.b[d.off+n-1] == 0:
		// A last byte of zero adds nothing: a shorter form exists.
		d.fail(field, d.off, errPadded)
	default:
		d.off += n
		return v
	}
	return 0
}

func (d *decoder) varint(field string) int64 {
	// Undo the zig-zag mapping by hand: binary.Varint would accept a padded form.
	u := d.uvarint(field)
	return int64(u>>1) ^ -int64(u&1)
}

func (d *decoder) u32(field string) uint32 {
	at := d.off
	v := d.uvarint(field)
	if v > math.MaxUint32 {
		d.fail(field, at, fmt.Errorf("value %d does not fit in 32 bits", v))
	}
	return uint32(v)
}

// length reads a length prefix, checking it against limit and then against
// the bytes left.
func (d *decoder) length(field string, limit int, what string) int {
	at := d.off
	v := d.uvarint(field)
	switch {
	case v > uint64(limit):
		d.fail(field, at, &LimitError{What: what, Got: clampInt(v), Limit: limit})
	case v > uint64(d.left()):
		d.fail(field, at, fmt.Errorf("%w: length %d with %d bytes left", errTruncated, v, d.left()))
	default:
		return int(v)
	}
	return 0
}

// count reads an element count, checking it against limit and against how
// many elements of at least minSize bytes the input can still hold.
func (d *decoder) count(field string, limit int, what string, minSize int) int {
	at := d.off
	v := d.uvarint(field)
	switch {
	case v > uint64(limit):
		d.fail(field, at, &LimitError{What: what, Got: clampInt(v), Limit: limit})
	case v > uint64(d.left()/minSize):
		d.fail(field, at, fmt.Errorf("%w: %d %s need at least %d bytes, %d left", errTruncated, v, what, v*uint64(minSize), d.left()))
	default:
		return int(v)
	}
	return 0
}

// bytes returns the next length-prefixed field as a sub-slice of the input,
// its capacity cut so that an append cannot overwrite what follows.
func (d *decoder) bytes(field string, limit int, what string) []byte {
	n := d.length(field, limit, what)
	if n == 0 {
		return nil
	}
	d.off += n
	return d.b[d.off-n : d.off : d.off]
}

// str returns the next length-prefixed field as a string sharing the input.
func (d *decoder) str(field string, limit int, what string) string {
	n := d.length(field, limit, what)
	if n == 0 {
		return ""
	}
	d.off += n
	return unsafe.String(&d.b[d.off-n], n)
}

func (d *decoder) entry(e *Entry, i int, lim Limits) {
	at := d.off
	parent := d.uvarint("Parent")
	switch {
	case i == 0 && parent != 0:
		d.fail("Parent", at, fmt.Errorf("root entry has parent %d", parent-1))
	case i > 0 && (parent == 0 || parent > uint64(i)):
		d.fail("Parent", at, fmt.Errorf("parent %d out of range [0,%d)", int64(parent)-1, i))
	}
	at = d.off
	state := State(d.u8("State"))
	if state < StateReady || state > StateFailed {
		d.fail("State", at, fmt.Errorf("unknown %s", state))
	}
	// Every field is written, so that nothing survives from an earlier decode
	// into a reused entry (TestDecodeReusesAndOverwrites).
	e.Parent, e.State = int32(parent)-1, state
	e.InputRef, e.OutputRef = false, false
	if d.version >= 3 {
		at = d.off
		refs := d.u8("Refs")
		if refs&^(refInput|refOutput) != 0 {
			d.fail("Refs", at, fmt.Errorf("unknown bits %#x", refs))
		}
		e.InputRef, e.OutputRef = refs&refInput != 0, refs&refOutput != 0
	}
	e.Steps = d.u32("Steps")
	copy(e.Module[:], d.fixed("Module", len(e.Module)))
	e.Target = d.str("Target", lim.MaxName, "target bytes")
	e.Kind = d.str("Kind", lim.MaxName, "kind bytes")
	e.Input = d.bytes("Input", lim.MaxBytes, "input bytes")
	e.Cont = d.bytes("Cont", lim.MaxCont, "continuation bytes")
	e.ErrCode = d.u32("ErrCode")
	e.Output = d.bytes("Output", lim.MaxBytes, "output bytes")
	e.ErrMsg = d.str("ErrMsg", lim.MaxMsg, "error message bytes")
}

func (d *decoder) blob(b *Blob, lim Limits) {
	copy(b.Hash[:], d.fixed("Hash", len(b.Hash)))
	b.Size = d.uvarint("Size")
	at := d.off
	b.Holder = d.str("Holder", lim.MaxName, "holder bytes")
	if d.err == nil && b.Holder == "" {
		d.fail("Holder", at, errors.New("empty holder"))
	}
	at = d.off
	switch g := d.u8("Guest"); g {
	case 0, 1:
		b.Guest = g == 1
	default:
		d.fail("Guest", at, fmt.Errorf("got %d, want 0 or 1", g))
	}
}

func (d *decoder) step(s *Step, lim Limits) {
	s.Node = d.str("Node", lim.MaxName, "node name bytes")
	at := d.off
	entry := d.varint("Entry")
	if entry < math.MinInt32 || entry > math.MaxInt32 {
		d.fail("Entry", at, fmt.Errorf("value %d does not fit in 32 bits", entry))
	}
	s.Entry = int32(entry)
	at = d.off
	if s.Outcome = Outcome(d.u8("Outcome")); s.Outcome < OutcomeReply || s.Outcome > OutcomeFail {
		d.fail("Outcome", at, fmt.Errorf("unknown %s", s.Outcome))
	}
	s.Micros = d.u32("Micros")
	if d.version == 1 {
		s.Start, s.WaitMicros, s.Next = 0, 0, MoveNone
		return
	}
	s.Start = d.varint("Start")
	s.WaitMicros = d.u32("WaitMicros")
	at = d.off
	if s.Next = Move(d.u8("Next")); s.Next > maxMove {
		d.fail("Next", at, fmt.Errorf("unknown %s", s.Next))
	}
}

func (d *decoder) traceContext(tc *TraceContext) {
	*tc = TraceContext{}
	if d.version == 1 {
		return
	}
	at := d.off
	switch present := d.u8("TraceContext"); {
	case d.err != nil || present == 0:
		return
	case present != 1:
		d.fail("TraceContext", at, fmt.Errorf("presence byte %d, want 0 or 1", present))
		return
	}
	at = d.off
	copy(tc.TraceID[:], d.fixed("TraceContext.TraceID", len(tc.TraceID)))
	if d.err == nil && tc.TraceID == [16]byte{} {
		d.fail("TraceContext.TraceID", at, errors.New("all zero"))
	}
	at = d.off
	copy(tc.SpanID[:], d.fixed("TraceContext.SpanID", len(tc.SpanID)))
	if d.err == nil && tc.SpanID == [8]byte{} {
		d.fail("TraceContext.SpanID", at, errors.New("all zero"))
	}
	tc.Flags = d.u8("TraceContext.Flags")
	tc.State = d.str("TraceContext.State", MaxTraceState, "tracestate bytes")
}

// WireSize returns the exact length of p's encoding (what MarshalBinary
// would return for a valid p), computed from the field lengths without
// encoding: cheap enough to check after every step, so that a process is
// kept within Limits.MaxTotal while it runs. Encoding uses it to grow its
// buffer at most once.
func (p *Process) WireSize() int {
	n := len(wireMagic) + 1 + len(p.ID) + stringSize(p.Origin) +
		uvarintSize(uint64(p.Attempt)) + uvarintSize(zigzag(p.Deadline)) +
		uvarintSize(uint64(p.TraceDropped)) + traceContextSize(&p.TraceContext) + uvarintSize(uint64(len(p.Entries))) +
		uvarintSize(uint64(p.Active+1)) + uvarintSize(uint64(len(p.Trace))) + uvarintSize(uint64(len(p.Blobs)))
	for i := range p.Entries {
		e := &p.Entries[i]
		n += uvarintSize(uint64(e.Parent+1)) + 2 + uvarintSize(uint64(e.Steps)) + len(e.Module) +
			stringSize(e.Target) + stringSize(e.Kind) + stringSize(e.Input) + stringSize(e.Cont) +
			uvarintSize(uint64(e.ErrCode)) + stringSize(e.Output) + stringSize(e.ErrMsg)
	}
	for i := range p.Trace {
		s := &p.Trace[i]
		n += stringSize(s.Node) + uvarintSize(zigzag(int64(s.Entry))) + 1 + uvarintSize(uint64(s.Micros)) +
			uvarintSize(zigzag(s.Start)) + uvarintSize(uint64(s.WaitMicros)) + 1
	}
	for i := range p.Blobs {
		b := &p.Blobs[i]
		n += len(b.Hash) + uvarintSize(b.Size) + stringSize(b.Holder) + 1
	}
	return n
}

func traceContextSize(tc *TraceContext) int {
	if tc.IsZero() {
		return 1
	}
	return 1 + len(tc.TraceID) + len(tc.SpanID) + 1 + stringSize(tc.State)
}

func appendString[S string | []byte](b []byte, s S) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func stringSize[S string | []byte](s S) int { return uvarintSize(uint64(len(s))) + len(s) }

// uvarintSize is the length of v's shortest uvarint encoding.
func uvarintSize(v uint64) int { return (bits.Len64(v|1) + 6) / 7 }

func zigzag(v int64) uint64 { return uint64(v<<1) ^ uint64(v>>63) }

func clampInt(v uint64) int { return int(min(v, math.MaxInt)) }
