package tsubame

import (
	"time"
	"unsafe"

	"github.com/tsubame-rt/tsubame/abi"
)

// Bucket is a key-value bucket the component was granted (ABI.md §10).
// Its operations apply once per step however often the step runs, and a
// re-run gets the first run's answers (docs/guarantees.md). They may be used
// in both styles; values returned are valid until the step ends, like Input.
type Bucket struct{ name string }

// KV returns the bucket named name; "" is the component's private bucket.
func KV(name string) Bucket { return Bucket{name: name} }

// KVError is a KV operation's status other than success. Compare with
// errors.Is against ErrNotFound, ErrUnavailable and the others. A handler
// that returns one fails the entry with CodeStoreDown (12) for
// ErrUnavailable, CodeNotFound (404) for ErrNotFound and CodeError (500)
// otherwise.
type KVError struct {
	Op     string // "get", "set", ...; "" in the sentinels
	Status int    // abi.KV*
}

// The KV statuses, for errors.Is.
var (
	ErrNotFound    = &KVError{Status: abi.KVNotFound}
	ErrTooLarge    = &KVError{Status: abi.KVTooLarge}
	ErrUnavailable = &KVError{Status: abi.KVUnavailable}
	ErrNotGranted  = &KVError{Status: abi.KVNotGranted}
	ErrMismatch    = &KVError{Status: abi.KVMismatch}
	ErrNotInteger  = &KVError{Status: abi.KVNotInteger}
	ErrInvalid     = &KVError{Status: abi.KVInvalid}
)

// CodeStoreDown is the code an entry fails with when a store it needs does
// not answer; the gateway answers 503.
const CodeStoreDown = abi.CodeStoreDown

func (e *KVError) Error() string {
	name := abi.KVStatusName(e.Status)
	if name == "" {
		name = "status " + itoa(e.Status)
	}
	if e.Op == "" {
		return "kv: " + name
	}
	return "kv " + e.Op + ": " + name
}

// Is matches a sentinel of the same status.
func (e *KVError) Is(target error) bool {
	t, ok := target.(*KVError)
	return ok && t.Op == "" && t.Status == e.Status
}

// As lets FailErr, and a sequential handler returning the error, fail the
// entry with the status's code.
func (e *KVError) As(target any) bool {
	p, ok := target.(**Error)
	if !ok {
		return false
	}
	code := uint32(CodeError)
	switch e.Status {
	case abi.KVUnavailable:
		code = CodeStoreDown
	case abi.KVNotFound:
		code = CodeNotFound
	}
	*p = &Error{Code: code, Msg: e.Error()}
	return true
}

func itoa(n int) string {
	if n < 0 {
		return "-" + itoa(-n)
	}
	if n < 10 {
		return string(rune('0' + n))
	}
	return itoa(n/10) + string(rune('0'+n%10))
}

func kvErr(op string, st int32) error {
	if st >= 0 {
		return nil
	}
	return &KVError{Op: op, Status: int(-st)}
}

// ttlMs converts a TTL for the host: 0 (or less) is none; anything
// shorter than a millisecond is one; longer than the ABI allows is left for
// the host to refuse.
func ttlMs(ttl time.Duration) uint32 {
	switch {
	case ttl <= 0:
		return 0
	case ttl < time.Millisecond:
		return 1
	case ttl > time.Duration(abi.MaxKVTTLMilli)*time.Millisecond:
		return abi.MaxKVTTLMilli + 1
	}
	return uint32(ttl / time.Millisecond)
}

// kvSync tells the host, in the sequential style, how many calls the
// handler has made before this operation, so that a replayed operation is
// answered from the journal of the step that first made it.
func kvSync() {
	s := &st.seq
	if s.c == nil || s.kvAt == s.n {
		return
	}
	hostKVAfter(uint32(s.n))
	s.kvAt = s.n
}

func keyPtr(k []byte) unsafe.Pointer { return bytesPtr(k) }

// Get returns key's value, or an error matching ErrNotFound.
func (b Bucket) Get(key []byte) ([]byte, error) {
	kvSync()
	a := &st.arena
	free := a.b[len(a.b):cap(a.b)]
	n := hostKVGet(strPtr(b.name), uint32(len(b.name)), keyPtr(key), uint32(len(key)), bytesPtr(free), uint32(len(free)))
	if n < 0 {
		return nil, kvErr("get", n)
	}
	if int(n) > len(free) {
		a.b = make([]byte, 0, max(2*cap(a.b), int(n), 4096))
		free = a.b[:cap(a.b)]
		hostKVValue(bytesPtr(free), uint32(len(free))) // the same value: no second operation
	}
	a.b = a.b[:len(a.b)+int(n)]
	return free[:n:n], nil
}

// Set stores val under key; ttl > 0 makes it expire after ttl (at
// millisecond precision), 0 keeps it until deleted.
func (b Bucket) Set(key, val []byte, ttl time.Duration) error {
	kvSync()
	return kvErr("set", hostKVSet(strPtr(b.name), uint32(len(b.name)), keyPtr(key), uint32(len(key)),
		bytesPtr(val), uint32(len(val)), ttlMs(ttl)))
}

// Delete removes key, or returns an error matching ErrNotFound.
func (b Bucket) Delete(key []byte) error {
	kvSync()
	return kvErr("del", hostKVDel(strPtr(b.name), uint32(len(b.name)), keyPtr(key), uint32(len(key))))
}

// Add adds delta to key's value read as a decimal int64 (a missing key is
// 0), atomically, and returns the sum.
func (b Bucket) Add(key []byte, delta int32) (int64, error) {
	kvSync()
	var out int64
	st := hostKVAdd(strPtr(b.name), uint32(len(b.name)), keyPtr(key), uint32(len(key)), delta, unsafe.Pointer(&out))
	if st < 0 {
		return 0, kvErr("add", st)
	}
	return out, nil
}

// CompareAndSet stores val (for ttl, as Set) only if key's value is old. On
// ErrMismatch it also returns the current value (nil, found false: none).
func (b Bucket) CompareAndSet(key, old, val []byte, ttl time.Duration) (cur []byte, found bool, err error) {
	return b.cas(key, old, false, val, ttl)
}

// SetIfAbsent stores val (for ttl, as Set) only if key does not exist. On
// ErrMismatch it also returns the current value.
func (b Bucket) SetIfAbsent(key, val []byte, ttl time.Duration) (cur []byte, err error) {
	cur, _, err = b.cas(key, nil, true, val, ttl)
	return cur, err
}

func (b Bucket) cas(key, old []byte, absent bool, val []byte, ttl time.Duration) ([]byte, bool, error) {
	kvSync()
	el := uint32(len(old))
	if absent {
		el = abi.KVExpectAbsent
	}
	n := hostKVCAS(strPtr(b.name), uint32(len(b.name)), keyPtr(key), uint32(len(key)), bytesPtr(old), el,
		bytesPtr(val), uint32(len(val)), ttlMs(ttl))
	if n != -abi.KVMismatch {
		return nil, false, kvErr("cas", n)
	}
	a := &st.arena
	free := a.b[len(a.b):cap(a.b)]
	m := hostKVValue(bytesPtr(free), uint32(len(free)))
	if m < 0 {
		return nil, false, kvErr("cas", n)
	}
	if int(m) > len(free) {
		a.b = make([]byte, 0, max(2*cap(a.b), int(m), 4096))
		free = a.b[:cap(a.b)]
		hostKVValue(bytesPtr(free), uint32(len(free)))
	}
	a.b = a.b[:len(a.b)+int(m)]
	return free[:m:m], true, kvErr("cas", n)
}
