package conformance

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
)

// withVersion returns a copy of a module whose tsubame_abi_version export
// is rewired to a new function returning v. It works on any language's
// module: the function is appended (no existing index moves) and uses an
// existing () -> i32 type, which the real export needs anyway.
func withVersion(wasm []byte, v int32) ([]byte, error) {
	if len(wasm) < 8 || string(wasm[:4]) != "\x00asm" {
		return nil, errors.New("not a wasm module")
	}
	type section struct {
		id   byte
		body []byte
	}
	var secs []section
	for r := wasm[8:]; len(r) > 0; {
		id := r[0]
		n, k := binary.Uvarint(r[1:])
		if k <= 0 || uint64(len(r)-1-k) < n {
			return nil, errors.New("truncated section")
		}
		secs = append(secs, section{id, r[1+k : 1+k+int(n)]})
		r = r[1+k+int(n):]
	}
	var (
		typeIdx               = -1
		imported, defined     uint64
		haveFuncs, haveExport bool
	)
	for _, s := range secs {
		switch s.id {
		case 1: // types: find () -> i32
			r := &reader{b: s.body}
			for i, n := 0, r.u(); i < int(n) && r.err == nil; i++ {
				if r.byte() != 0x60 {
					return nil, errors.New("unsupported type form")
				}
				params := r.vec()
				results := r.vec()
				if typeIdx < 0 && len(params) == 0 && bytes.Equal(results, []byte{0x7f}) {
					typeIdx = i
				}
			}
		case 2: // imports: count functions
			r := &reader{b: s.body}
			for i, n := 0, r.u(); i < int(n) && r.err == nil; i++ {
				r.vec()
				r.vec()
				switch r.byte() {
				case 0: // func
					r.u()
					imported++
				case 1: // table
					r.byte()
					r.limits()
				case 2: // memory
					r.limits()
				case 3: // global
					r.byte()
					r.byte()
				default:
					return nil, errors.New("unsupported import kind")
				}
			}
			if r.err != nil {
				return nil, r.err
			}
		case 3:
			defined = (&reader{b: s.body}).u()
			haveFuncs = true
		}
	}
	if typeIdx < 0 || !haveFuncs {
		return nil, errors.New("no () -> i32 type or no function section")
	}
	newFunc := imported + defined
	out := append([]byte{}, wasm[:8]...)
	for _, s := range secs {
		body := s.body
		switch s.id {
		case 3: // functions: one more, of type () -> i32
			r := &reader{b: s.body}
			r.u()
			body = binary.AppendUvarint(nil, defined+1)
			body = append(body, r.b...)
			body = binary.AppendUvarint(body, uint64(typeIdx))
		case 7: // exports: repoint tsubame_abi_version
			r := &reader{b: s.body}
			n := r.u()
			body = binary.AppendUvarint(nil, n)
			for i := uint64(0); i < n && r.err == nil; i++ {
				name := r.vec()
				kind := r.byte()
				idx := r.u()
				if kind == 0 && string(name) == "tsubame_abi_version" {
					idx, haveExport = newFunc, true
				}
				body = binary.AppendUvarint(body, uint64(len(name)))
				body = append(body, name...)
				body = append(body, kind)
				body = binary.AppendUvarint(body, idx)
			}
			if r.err != nil {
				return nil, r.err
			}
		case 10: // code: append the body "i32.const v; end"
			r := &reader{b: s.body}
			n := r.u()
			fn := append([]byte{0, 0x41}, sleb(int64(v))...)
			fn = append(fn, 0x0b)
			body = binary.AppendUvarint(nil, n+1)
			body = append(body, r.b...)
			body = binary.AppendUvarint(body, uint64(len(fn)))
			body = append(body, fn...)
		}
		out = append(out, s.id)
		out = binary.AppendUvarint(out, uint64(len(body)))
		out = append(out, body...)
	}
	if !haveExport {
		return nil, errors.New("no tsubame_abi_version export")
	}
	return out, nil
}

// reader reads LEB128 numbers and vectors, remembering the first error.
type reader struct {
	b   []byte
	err error
}

func (r *reader) u() uint64 {
	v, k := binary.Uvarint(r.b)
	if k <= 0 {
		r.err = fmt.Errorf("bad LEB128")
		r.b = nil
		return 0
	}
	r.b = r.b[k:]
	return v
}

func (r *reader) byte() byte {
	if len(r.b) == 0 {
		r.err = errors.New("truncated")
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *reader) vec() []byte {
	n := r.u()
	if uint64(len(r.b)) < n {
		r.err = errors.New("truncated vector")
		r.b = nil
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) limits() {
	if r.byte()&1 != 0 {
		r.u()
	}
	r.u()
}

func sleb(v int64) []byte {
	var out []byte
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if (v == 0 && c&0x40 == 0) || (v == -1 && c&0x40 != 0) {
			return append(out, c)
		}
		out = append(out, c|0x80)
	}
}
