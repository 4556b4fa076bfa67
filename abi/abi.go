// Package abi is the contract between Tsubame hosts and WebAssembly
// components: the import module name, every host function with its
// signature, the guest exports, the error codes and the limits. ABI.md beside
// this file is the normative text; this package is its machine-readable form,
// shared by the host (wasmhost) and by tools that check modules.
//
// abi holds constants only. It never runs, loads or validates a module.
// Guest SDKs live in the sub-folders: go, c, rust, as.
package abi

// Version is the ABI major version this host implements. A module exports
// ExportVersion returning it.
const Version = 1

// Minor is the ABI minor version this host implements: 1.1 adds host
// functions (blob_*, input_ref, child_ref, reply_ref, ABI.md §9; kv_*, §10) and changes
// none. A module of version 1 that imports only 1.0 functions runs on every
// 1.x host; one that imports a 1.1 function is refused at load by a 1.0
// host, which names the missing import.
const Minor = 1

// Module is the import module name of every host function.
const Module = "tsubame"

// WASI is the only other import module a component may use
// (wasi_snapshot_preview1), served with no files, no environment, no
// arguments and no sockets: clocks, random numbers and stdout/stderr (which
// go to the node's log).
const WASI = "wasi_snapshot_preview1"

// Guest exports.
const (
	ExportVersion    = "tsubame_abi_version" // () -> i32, must return Version
	ExportStep       = "tsubame_step"        // () -> (), runs one step
	ExportMemory     = "memory"              // the guest's linear memory
	ExportInitialize = "_initialize"         // optional () -> (), called once per instance
)

// Host functions, all imported from Module. Every parameter and result is
// an i32. ValType strings below use wasm text syntax.
const (
	FnKind      = "kind"       // (ptr, cap) -> len
	FnInput     = "input"      // (ptr, cap) -> len
	FnCont      = "cont"       // (ptr, cap) -> len
	FnCalls     = "calls"      // () -> n
	FnChildCode = "child_code" // (index) -> code, -1 if no such child
	FnChild     = "child"      // (index, ptr, cap) -> len, -1 if no such child
	FnReply     = "reply"      // (ptr, len) -> ()
	FnCall      = "call"       // (tptr, tlen, kptr, klen, iptr, ilen, cptr, clen) -> ()
	FnFail      = "fail"       // (code, ptr, len) -> ()
	FnLog       = "log"        // (level, ptr, len) -> ()

	// ABI 1.1: blobs (ABI.md §9). A reference is abi.RefLen bytes.
	FnBlobPut  = "blob_put"  // (ptr, len, refptr) -> code: 0, or a host code
	FnBlobRead = "blob_read" // (refptr, offset, ptr, cap) -> n read, or -code
	FnInputRef = "input_ref" // (refptr) -> 1 input is a reference (written), 0 inline
	FnChildRef = "child_ref" // (index, refptr) -> 1 reference, 0 inline, -1 no such child
	FnReplyRef = "reply_ref" // (refptr) -> (), the outcome: reply with the blob

	// ABI 1.1: key-value buckets (ABI.md §10). Each returns a KV status: 0
	// or more is success, a negative value is -KV*.
	FnKVGet   = "kv_get"   // (bptr, blen, kptr, klen, vptr, vcap) -> len or -status
	FnKVValue = "kv_value" // (vptr, vcap) -> len of the last value kv_get or kv_cas saw, or -KVNotFound
	FnKVSet   = "kv_set"   // (bptr, blen, kptr, klen, vptr, vlen, ttl_ms) -> 0 or -status
	FnKVDel   = "kv_del"   // (bptr, blen, kptr, klen) -> 0 or -status
	FnKVAdd   = "kv_add"   // (bptr, blen, kptr, klen, delta, outptr) -> 0 or -status; writes the new i64 at outptr
	FnKVCAS   = "kv_cas"   // (bptr, blen, kptr, klen, eptr, elen, vptr, vlen, ttl_ms) -> 0 or -status
	FnKVAfter = "kv_after" // (n) -> 0 or -KVInvalid: the operations that follow are those made after call n (sequential replay)
)

// RefLen is the length of a blob reference: the SHA-256 of the blob, then
// its size as 8 little-endian bytes.
const RefLen = 40

// Signature is the number of i32 parameters and results of a host function.
type Signature struct{ Params, Results int }

// HostFunctions lists every host function with its signature.
var HostFunctions = map[string]Signature{
	FnKind:      {2, 1},
	FnInput:     {2, 1},
	FnCont:      {2, 1},
	FnCalls:     {0, 1},
	FnChildCode: {1, 1},
	FnChild:     {3, 1},
	FnReply:     {2, 0},
	FnCall:      {8, 0},
	FnFail:      {3, 0},
	FnLog:       {3, 0},
	FnBlobPut:   {3, 1},
	FnBlobRead:  {4, 1},
	FnInputRef:  {1, 1},
	FnChildRef:  {2, 1},
	FnReplyRef:  {1, 0},
	FnKVGet:     {6, 1},
	FnKVValue:   {2, 1},
	FnKVSet:     {7, 1},
	FnKVDel:     {4, 1},
	FnKVAdd:     {6, 1},
	FnKVCAS:     {9, 1},
	FnKVAfter:   {1, 1},
}

// Failure codes. A failed entry carries a code (never 0) and a message.
// Codes 1 to 99 are the host's; a component may use them too when it
// forwards a child's failure. Codes 400 to 599 are HTTP statuses the gateway
// answers with as they are. ONLY APPEND.
const (
	CodeTrap         = 1   // the step trapped (unreachable, bad memory access, stack overflow, guest panic)
	CodeTimeout      = 2   // the step ran past its deadline, or the LP past its own
	CodeABIViolation = 3   // the guest broke this contract (bad pointer, no outcome, two outcomes, bad name)
	CodeNoComponent  = 4   // no live node holds the target component
	CodeMemoryLimit  = 5   // the guest hit its memory page limit
	CodeLimit        = 6   // a size or count limit: input, reply, continuation, entries, depth
	CodeUnavailable  = 7   // holders exist but none accepted the LP (overloaded, shutting down)
	CodeBadModule    = 8   // the module could not be compiled or instantiated
	CodeInternal     = 9   // a host bug; always logged
	CodeCanceled     = 10  // the LP was abandoned (its origin gave up)
	CodeVersionGone  = 11  // the module version that saved a continuation is no longer available
	CodeStoreDown    = 12  // a store the step needed (a KV bucket's backend) did not answer; the SDKs fail with it
	CodeUser         = 100 // the first code without a meaning of the host's
)

// Log levels for FnLog.
const (
	LogDebug = 0
	LogInfo  = 1
	LogWarn  = 2
	LogError = 3
)

// Limits every host guarantees at least; a node may be configured higher.
const (
	MaxName    = 64       // bytes in a target or kind name
	MaxInput   = 1 << 20  // bytes of input to one entry (and of one reply)
	MaxReply   = 1 << 20  // bytes of one reply
	MaxCont    = 64 << 10 // bytes of one saved continuation
	MaxErrMsg  = 4 << 10  // bytes of a failure message; longer ones are truncated
	MaxLogMsg  = 4 << 10  // bytes of a log message; longer ones are truncated
	MaxDepth   = 64       // nested calls below the root entry
	MaxEntries = 1024     // entries in one LP
)

// KV statuses, returned negated by the kv_* functions: a KV operation never
// traps for a reason of the store's (ABI.md §10). ONLY APPEND.
const (
	KVOK          = 0 // success
	KVNotFound    = 1 // no such key (get, del, kv_value with nothing read)
	KVTooLarge    = 2 // key, value or bucket name over its limit, or too many operations in one step
	KVUnavailable = 3 // the bucket's backend did not answer; nothing was applied
	KVNotGranted  = 4 // the component was not granted this bucket, or there is no such bucket
	KVMismatch    = 5 // compare-and-set: the current value is not the expected one (kv_value reads it)
	KVNotInteger  = 6 // add: the current value is not a decimal integer, or the sum overflows int64
	KVInvalid     = 7 // a bad argument: an invalid bucket name, an empty key, a TTL too long
)

// KVExpectAbsent as kv_cas's expected length means "only if the key does
// not exist".
const KVExpectAbsent = 0xFFFFFFFF

// KV limits every host guarantees at least.
const (
	MaxKVKey      = 1 << 10   // bytes in one key
	MaxKVValue    = 1 << 20   // bytes in one value
	MaxKVOps      = 1 << 10   // KV operations in one step
	MaxKVTTLMilli = 1<<31 - 1 // the longest TTL, in milliseconds (about 24.8 days)
)

// KVStatusName returns the symbolic name of a KV status, or "".
func KVStatusName(status int) string {
	switch status {
	case KVOK:
		return "ok"
	case KVNotFound:
		return "not found"
	case KVTooLarge:
		return "too large"
	case KVUnavailable:
		return "unavailable"
	case KVNotGranted:
		return "not granted"
	case KVMismatch:
		return "mismatch"
	case KVNotInteger:
		return "not an integer"
	case KVInvalid:
		return "invalid"
	}
	return ""
}

// ValidName reports whether s may name a component or a request kind:
// 1 to MaxName bytes, ASCII letters, digits, '_', '-' and '.', starting with a
// letter.
func ValidName(s string) bool {
	if len(s) == 0 || len(s) > MaxName {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
		case i > 0 && (c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.'):
		default:
			return false
		}
	}
	return true
}

// CodeName returns the symbolic name of a host code, or "" for others.
func CodeName(code uint32) string {
	switch code {
	case CodeTrap:
		return "trap"
	case CodeTimeout:
		return "timeout"
	case CodeABIViolation:
		return "abi violation"
	case CodeNoComponent:
		return "no component"
	case CodeMemoryLimit:
		return "memory limit"
	case CodeLimit:
		return "limit exceeded"
	case CodeUnavailable:
		return "unavailable"
	case CodeBadModule:
		return "bad module"
	case CodeInternal:
		return "internal error"
	case CodeCanceled:
		return "canceled"
	case CodeVersionGone:
		return "version gone"
	case CodeStoreDown:
		return "store unavailable"
	}
	return ""
}
