//go:build wasip1

package tsubame

import (
	"runtime"
	"unsafe"
)

// The host functions of ABI.md §3. Pointers are offsets in this module's
// memory; the Go wasm port never moves heap objects, so passing them is safe.

//go:wasmimport tsubame kind
func hostKind(ptr unsafe.Pointer, cap uint32) int32

//go:wasmimport tsubame input
func hostInput(ptr unsafe.Pointer, cap uint32) int32

//go:wasmimport tsubame cont
func hostCont(ptr unsafe.Pointer, cap uint32) int32

//go:wasmimport tsubame calls
func hostCalls() int32

//go:wasmimport tsubame child_code
func hostChildCode(index int32) int32

//go:wasmimport tsubame child
func hostChild(index int32, ptr unsafe.Pointer, cap uint32) int32

//go:wasmimport tsubame reply
func hostReply(ptr unsafe.Pointer, n uint32)

//go:wasmimport tsubame call
func hostCall(target unsafe.Pointer, targetLen uint32, kind unsafe.Pointer, kindLen uint32,
	input unsafe.Pointer, inputLen uint32, cont unsafe.Pointer, contLen uint32)

//go:wasmimport tsubame fail
func hostFail(code uint32, msg unsafe.Pointer, n uint32)

//go:wasmimport tsubame log
func hostLog(level int32, msg unsafe.Pointer, n uint32)

// memoryPages returns the size of linear memory in 64 KiB pages
// (memory_wasm.s).
func memoryPages() int32

// The exports of ABI.md §2, provided by the SDK for every component.

//go:wasmexport tsubame_abi_version
func exportVersion() int32 { return 1 }

//go:wasmexport tsubame_step
func exportStep() { step() }

var memStats runtime.MemStats

// readAllocs returns the bytes allocated since the instance started.
// runtime.ReadMemStats costs about 25 µs, three times runtime/metrics, but
// runtime/metrics would add 120 KB to every module.
func readAllocs() uint64 {
	runtime.ReadMemStats(&memStats)
	return memStats.TotalAlloc
}

// The key-value functions of ABI.md §10 (ABI 1.1). A module imports them
// only if it uses Bucket: the linker drops unreachable imports.

//go:wasmimport tsubame kv_get
func hostKVGet(b unsafe.Pointer, bl uint32, k unsafe.Pointer, kl uint32, v unsafe.Pointer, vcap uint32) int32

//go:wasmimport tsubame kv_value
func hostKVValue(v unsafe.Pointer, vcap uint32) int32

//go:wasmimport tsubame kv_set
func hostKVSet(b unsafe.Pointer, bl uint32, k unsafe.Pointer, kl uint32, v unsafe.Pointer, vl uint32, ttlMs uint32) int32

//go:wasmimport tsubame kv_del
func hostKVDel(b unsafe.Pointer, bl uint32, k unsafe.Pointer, kl uint32) int32

//go:wasmimport tsubame kv_add
func hostKVAdd(b unsafe.Pointer, bl uint32, k unsafe.Pointer, kl uint32, delta int32, out unsafe.Pointer) int32

//go:wasmimport tsubame kv_cas
func hostKVCAS(b unsafe.Pointer, bl uint32, k unsafe.Pointer, kl uint32, e unsafe.Pointer, el uint32,
	v unsafe.Pointer, vl uint32, ttlMs uint32) int32

//go:wasmimport tsubame kv_after
func hostKVAfter(n uint32) int32
