package cluster

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"math"

	"github.com/tsubame-rt/tsubame/lp"
)

// Message types of the user messages nodes exchange over memberlist. ONLY
// APPEND: the values are on the wire.
const (
	msgReport byte = 1 // a load report, with or without the component list
)

// wireVersion is the version of the meta and report encodings. A receiver
// drops what it does not understand (with a debug log), so mixed versions
// degrade to "peer not a candidate" rather than misreading each other.
const wireVersion = 1

// Report flags.
const (
	flagComponents = 1 << 0 // the report carries the full component list
)

// Meta flags.
const (
	metaGateway = 1 << 0
)

// maxComponents bounds what a decoder accepts from one report.
const maxComponents = 4096

// report is one load report, as sent and as decoded.
type report struct {
	Name       string
	Epoch, Seq uint64 // Epoch: the sender's start time; (Epoch, Seq) orders reports
	Load       float64
	Queue      int
	Workers    int
	In, Out    float64 // LPs per second
	Digest     uint64  // of the component list, carried or not
	HasComps   bool
	Components []Component
}

// digest identifies a component list (names and hashes, in order) so a report
// too large to carry the list can say which list it means.
func digest(cs []Component) uint64 {
	h := fnv.New64a()
	for _, c := range cs {
		h.Write([]byte(c.Name))
		h.Write([]byte{0})
		h.Write(c.Hash[:])
	}
	return h.Sum64()
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func (r *report) append(b []byte, withComps bool) []byte {
	b = append(b, msgReport, wireVersion)
	b = appendString(b, r.Name)
	b = binary.AppendUvarint(b, r.Epoch)
	b = binary.AppendUvarint(b, r.Seq)
	b = binary.LittleEndian.AppendUint64(b, math.Float64bits(r.Load))
	b = binary.AppendUvarint(b, uint64(max(r.Queue, 0)))
	b = binary.AppendUvarint(b, uint64(max(r.Workers, 0)))
	b = binary.LittleEndian.AppendUint64(b, math.Float64bits(r.In))
	b = binary.LittleEndian.AppendUint64(b, math.Float64bits(r.Out))
	b = binary.LittleEndian.AppendUint64(b, r.Digest)
	if !withComps {
		return append(b, 0)
	}
	b = append(b, flagComponents)
	b = binary.AppendUvarint(b, uint64(len(r.Components)))
	for _, c := range r.Components {
		b = appendString(b, c.Name)
		b = append(b, c.Hash[:]...)
	}
	return b
}

var errShort = errors.New("truncated")

// reader decodes without ever panicking: every read checks the length.
type reader struct {
	b   []byte
	err error
}

func (r *reader) byte() byte {
	if r.err != nil || len(r.b) < 1 {
		r.err = errShort
		return 0
	}
	v := r.b[0]
	r.b = r.b[1:]
	return v
}

func (r *reader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = errShort
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) fixed(n int) []byte {
	if r.err != nil || len(r.b) < n {
		r.err = errShort
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

// string copies: NotifyMsg's buffer is reused after it returns.
func (r *reader) string(max int) string {
	n := r.uvarint()
	if r.err == nil && n > uint64(max) {
		r.err = fmt.Errorf("string of %d bytes exceeds %d", n, max)
	}
	return string(r.fixed(int(n)))
}

func decodeReport(b []byte) (*report, error) {
	rd := &reader{b: b}
	if t := rd.byte(); rd.err == nil && t != msgReport {
		return nil, fmt.Errorf("message type %d is not a report", t)
	}
	if v := rd.byte(); rd.err == nil && v != wireVersion {
		return nil, fmt.Errorf("report version %d, want %d", v, wireVersion)
	}
	r := &report{}
	r.Name = rd.string(lp.DefaultLimits.MaxName)
	r.Epoch = rd.uvarint()
	r.Seq = rd.uvarint()
	r.Load = math.Float64frombits(binary.LittleEndian.Uint64(pad8(rd.fixed(8))))
	r.Queue = int(min(rd.uvarint(), math.MaxInt32))
	r.Workers = int(min(rd.uvarint(), math.MaxInt32))
	r.In = math.Float64frombits(binary.LittleEndian.Uint64(pad8(rd.fixed(8))))
	r.Out = math.Float64frombits(binary.LittleEndian.Uint64(pad8(rd.fixed(8))))
	r.Digest = binary.LittleEndian.Uint64(pad8(rd.fixed(8)))
	flags := rd.byte()
	if rd.err == nil && flags&flagComponents != 0 {
		n := rd.uvarint()
		if rd.err == nil && n > maxComponents {
			return nil, fmt.Errorf("report lists %d components, limit %d", n, maxComponents)
		}
		r.HasComps = true
		r.Components = make([]Component, 0, n)
		for i := uint64(0); i < n && rd.err == nil; i++ {
			var c Component
			c.Name = rd.string(lp.DefaultLimits.MaxName)
			copy(c.Hash[:], rd.fixed(len(c.Hash)))
			r.Components = append(r.Components, c)
		}
	}
	if rd.err != nil {
		return nil, fmt.Errorf("decode report: %w", rd.err)
	}
	for _, v := range []float64{r.Load, r.In, r.Out} {
		if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
			return nil, fmt.Errorf("report from %q has figure %v", r.Name, v)
		}
	}
	if r.HasComps && digest(r.Components) != r.Digest {
		return nil, fmt.Errorf("report from %q: component digest mismatch", r.Name)
	}
	return r, nil
}

// pad8 turns a failed fixed(8) (nil) into zeros so the caller needs no branch;
// the reader's error is reported anyway.
func pad8(b []byte) []byte {
	if len(b) == 8 {
		return b
	}
	return make([]byte, 8)
}

// nodeMeta is what a member advertises through memberlist's node metadata
// (at most 512 bytes): only what never changes while it runs. Load and
// components travel in reports, which are not size-limited that way.
type nodeMeta struct {
	QUIC    string
	Gateway bool
}

func (m nodeMeta) encode() []byte {
	b := []byte{wireVersion, 0}
	if m.Gateway {
		b[1] |= metaGateway
	}
	return appendString(b, m.QUIC)
}

func decodeMeta(b []byte) (nodeMeta, error) {
	rd := &reader{b: b}
	if v := rd.byte(); rd.err == nil && v != wireVersion {
		return nodeMeta{}, fmt.Errorf("meta version %d, want %d", v, wireVersion)
	}
	flags := rd.byte()
	m := nodeMeta{Gateway: flags&metaGateway != 0}
	m.QUIC = rd.string(255)
	if rd.err != nil {
		return nodeMeta{}, fmt.Errorf("decode meta: %w", rd.err)
	}
	return m, nil
}
