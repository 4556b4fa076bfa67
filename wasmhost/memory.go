package wasmhost

import "github.com/tetratelabs/wazero/experimental"

// linearMemory backs one instance's memory (wazero's experimental
// MemoryAllocator) so the host sees a memory.grow it refuses: that is how a
// trap is told apart as abi.CodeMemoryLimit rather than guessed from the
// memory size. wazero checks a grow against the memory's maximum before it
// asks the allocator, so the runtime leaves maxima at wasm32's 65536 pages
// and the configured limit is enforced here. (A module's own declared
// maximum still applies; a grow past it is the module's own doing and traps
// as code 1.)
type linearMemory struct {
	buf     []byte
	limit   uint64 // bytes
	refused bool   // a grow past limit was refused during the current step
}

var _ experimental.LinearMemory = (*linearMemory)(nil)

// Allocate implements experimental.MemoryAllocator; each instance passes its
// own linearMemory at instantiation.
func (l *linearMemory) Allocate(cap, max uint64) experimental.LinearMemory {
	l.buf = make([]byte, 0, min(cap, l.limit))
	return l
}

// Reallocate grows the memory to size bytes, doubling its capacity (up to
// the limit) when it must move, so a guest growing page by page does not
// copy its whole memory on every grow. Bytes past len were zeroed by make
// and never written, so reslicing into them gives zeroed pages.
func (l *linearMemory) Reallocate(size uint64) []byte {
	if size > l.limit {
		l.refused = true
		return nil
	}
	if size > uint64(cap(l.buf)) {
		b := make([]byte, size, min(max(size, 2*uint64(cap(l.buf))), l.limit))
		copy(b, l.buf)
		l.buf = b
	}
	l.buf = l.buf[:size]
	return l.buf
}

func (l *linearMemory) Free() { l.buf = nil }
