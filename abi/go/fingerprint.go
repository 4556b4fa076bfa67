package tsubame

import "encoding/binary"

// The sequential style's continuation (ABI.md §6): the magic "TSQ1", then one
// little-endian u64 fingerprint per call made so far, in call order. The
// format is shared by every SDK, so it lives in a file that builds (and is
// tested) on any GOOS.
const (
	seqMagic = "TSQ1"
	fpSize   = 8
)

// FNV-1a 64 parameters.
const (
	fnvOffset = 0xcbf29ce484222325
	fnvPrime  = 0x100000001b3
)

// Fingerprint returns the fingerprint the sequential style records for a
// call: FNV-1a 64 over target, a zero byte, kind, a zero byte, and input.
// Valid names never contain a zero byte, so distinct calls hash distinct
// byte strings.
func Fingerprint(target, kind string, input []byte) uint64 {
	h := uint64(fnvOffset)
	for i := 0; i < len(target); i++ {
		h = (h ^ uint64(target[i])) * fnvPrime
	}
	h *= fnvPrime // ^ 0
	for i := 0; i < len(kind); i++ {
		h = (h ^ uint64(kind[i])) * fnvPrime
	}
	h *= fnvPrime // ^ 0
	for _, b := range input {
		h = (h ^ uint64(b)) * fnvPrime
	}
	return h
}

// seqCalls checks a sequential continuation against the number of finished
// calls and returns how many fingerprints it holds. An empty continuation is
// the first step's.
func seqCalls(cont []byte, calls int) (int, bool) {
	if len(cont) == 0 {
		return 0, calls == 0
	}
	if len(cont) < len(seqMagic) || string(cont[:len(seqMagic)]) != seqMagic {
		return 0, false
	}
	body := len(cont) - len(seqMagic)
	if body%fpSize != 0 || body/fpSize != calls {
		return 0, false
	}
	return calls, true
}

// seqFingerprint returns fingerprint i of a checked continuation.
func seqFingerprint(cont []byte, i int) uint64 {
	off := len(seqMagic) + i*fpSize
	return binary.LittleEndian.Uint64(cont[off : off+fpSize])
}

// appendSeq appends to dst the continuation that records the first n
// fingerprints of cont followed by fp.
func appendSeq(dst, cont []byte, n int, fp uint64) []byte {
	dst = append(dst, seqMagic...)
	if n > 0 {
		dst = append(dst, cont[len(seqMagic):len(seqMagic)+n*fpSize]...)
	}
	return binary.LittleEndian.AppendUint64(dst, fp)
}
