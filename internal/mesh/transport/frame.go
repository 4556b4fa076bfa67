package transport

import (
	"encoding/binary"
	"fmt"
	"io"
	"unicode/utf8"
)

// The wire protocol (also in PROTOCOL.md, which a stranger can implement
// from).
//
// A connection is QUIC with mutual TLS 1.3 under the cluster CA and ALPN
// "tsubame/1": the protocol version lives in ALPN, so a peer of another
// version fails the handshake instead of misreading frames. Each side may
// open bidirectional streams; a stream carries exchanges one after another:
// the opener writes one request frame, the other side answers with one
// response frame, and the stream is then free for the next exchange.
//
// A frame is
//
//	type    1 byte    a frameType below
//	length  uvarint   payload bytes; the receiver refuses more than its MaxFrame
//	                  before allocating anything
//	payload length bytes
//
// Requests:   LP (payload: an lp wire encoding, lp.WireVersion); REQUEST
// (payload: a RequestKind byte, then the kind's body; see request.go).
// Responses:  ACK (payload: the 16-byte ID of the LP, now owned by the
// receiver), REFUSE (payload: reason byte, then UTF-8 detail), ERROR
// (payload: error-code byte, then UTF-8 message), RESPONSE (payload: a
// RequestStatus byte, then the answer). REFUSE and RESPONSE leave the stream
// usable; ERROR ends it (the receiver closes its side), because the bytes
// that caused it may have left the stream out of step.
type frameType uint8

// Frame types. ONLY APPEND: the values are on the wire.
const (
	frameLP     frameType = 1
	frameAck    frameType = 2
	frameRefuse frameType = 3
	frameError  frameType = 4
	// frameRequest and frameResponse are a generic request/response
	// exchange (module fetch, install orders): request.go.
	frameRequest  frameType = 5
	frameResponse frameType = 6
)

func (t frameType) String() string {
	switch t {
	case frameLP:
		return "LP"
	case frameAck:
		return "ACK"
	case frameRefuse:
		return "REFUSE"
	case frameError:
		return "ERROR"
	case frameRequest:
		return "REQUEST"
	case frameResponse:
		return "RESPONSE"
	}
	return fmt.Sprintf("frame type %d", uint8(t))
}

// ErrorCode says what an ERROR frame complains about.
type ErrorCode uint8

// Error codes. ONLY APPEND: the values are on the wire.
const (
	// ErrFrame: the frame header could not be read (a bad length varint,
	// or the stream ended inside a frame).
	ErrFrame ErrorCode = 1
	// ErrFrameTooLarge: the length exceeds the receiver's MaxFrame.
	ErrFrameTooLarge ErrorCode = 2
	// ErrFrameType: a frame type the receiver does not take as a request
	// (unknown, reserved, or a response frame).
	ErrFrameType ErrorCode = 3
	// ErrBadLP: the LP payload does not decode (lp.DecodeError) or breaks
	// the receiver's lp.Limits.
	ErrBadLP ErrorCode = 4
	// ErrBadRequest: a REQUEST frame without its kind byte.
	ErrBadRequest ErrorCode = 5
	// ErrMemory: the frame waited too long for the receiver's frame memory
	// budget (per connection and per node; budget.go).
	ErrMemory ErrorCode = 6
)

func (c ErrorCode) String() string {
	switch c {
	case ErrFrame:
		return "malformed frame"
	case ErrFrameTooLarge:
		return "frame too large"
	case ErrFrameType:
		return "unsupported frame type"
	case ErrBadLP:
		return "malformed LP"
	case ErrBadRequest:
		return "malformed request"
	case ErrMemory:
		return "over the frame memory budget"
	}
	return fmt.Sprintf("error code %d", uint8(c))
}

// maxHeader is the most bytes a frame header takes: type and a uvarint
// length of a payload no larger than 2^32.
const maxHeader = 1 + binary.MaxVarintLen32 + 1

// maxResponse bounds a response frame a sender accepts: responses carry an
// ID or a short text, never a payload worth megabytes.
const maxResponse = 64 << 10

// maxText bounds the detail of a REFUSE or the message of an ERROR a
// receiver writes.
const maxText = 4 << 10

// appendFrame appends a frame of type t carrying payload to b.
func appendFrame(b []byte, t frameType, payload []byte) []byte {
	b = append(b, byte(t))
	b = binary.AppendUvarint(b, uint64(len(payload)))
	return append(b, payload...)
}

// appendText appends a REFUSE or ERROR frame: a code byte, then text cut to
// maxText bytes on a rune boundary (the protocol promises UTF-8).
func appendText(b []byte, t frameType, code byte, text string) []byte {
	if len(text) > maxText {
		cut := maxText
		for i := maxText; i > maxText-utf8.UTFMax; i-- {
			if utf8.RuneStart(text[i]) {
				cut = i
				break
			}
		}
		text = text[:cut]
	}
	b = append(b, byte(t))
	b = binary.AppendUvarint(b, uint64(1+len(text)))
	b = append(b, code)
	return append(b, text...)
}

// putHeader writes the header of a frame of type t with an n-byte payload
// right-aligned into hdr (len(hdr) == maxHeader) and returns where it
// starts: the LP is encoded after a reserved header, and its length is only
// known afterwards.
func putHeader(hdr []byte, t frameType, n int) int {
	var tmp [binary.MaxVarintLen64]byte
	k := binary.PutUvarint(tmp[:], uint64(n))
	start := len(hdr) - 1 - k
	hdr[start] = byte(t)
	copy(hdr[start+1:], tmp[:k])
	return start
}

// wireError is a problem with incoming bytes, answered with an ERROR frame.
type wireError struct {
	code ErrorCode
	msg  string
}

func (e *wireError) Error() string { return e.code.String() + ": " + e.msg }

// readHeader reads a frame header. limit bounds the length; a longer frame
// is a *wireError and nothing is allocated for it. io.EOF means the stream
// ended cleanly between frames.
func readHeader(r io.ByteReader, limit int) (frameType, int, error) {
	tb, err := r.ReadByte()
	if err != nil {
		return 0, 0, err
	}
	n, err := readUvarint(r)
	if err != nil {
		return 0, 0, err
	}
	if limit < 0 || n > uint64(limit) { // uint64 of a negative limit would admit anything
		return 0, 0, &wireError{ErrFrameTooLarge, fmt.Sprintf("%s frame of %d bytes exceeds the limit of %d", frameType(tb), n, limit)}
	}
	return frameType(tb), int(n), nil
}

// readUvarint is binary.ReadUvarint with its two failures told apart: a
// malformed varint is the peer's fault (a *wireError), anything else is the
// stream's.
func readUvarint(r io.ByteReader) (uint64, error) {
	var x uint64
	for i, shift := 0, uint(0); i < binary.MaxVarintLen64; i, shift = i+1, shift+7 {
		b, err := r.ReadByte()
		if err == io.EOF {
			return 0, &wireError{ErrFrame, "stream ended inside a frame header"}
		}
		if err != nil {
			return 0, err
		}
		if b < 0x80 {
			if i == binary.MaxVarintLen64-1 && b > 1 {
				break
			}
			return x | uint64(b)<<shift, nil
		}
		x |= uint64(b&0x7f) << shift
	}
	return 0, &wireError{ErrFrame, "frame length varint overflows 64 bits"}
}
