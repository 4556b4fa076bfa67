//go:build !wasip1

package tsubame

import "unsafe"

// Outside wasm the host functions call testHost, which the package's tests
// set; a program that calls them otherwise gets a panic saying why. This
// keeps the SDK's logic buildable and testable with plain `go test`.

// fakeHost is the host as the tests model it.
type fakeHost interface {
	kind() []byte
	input() []byte
	cont() []byte
	calls() int32
	childCode(i int32) int32
	child(i int32) ([]byte, bool)
	reply(b []byte)
	call(target, kind string, input, cont []byte)
	fail(code uint32, msg string)
	log(level int32, msg string)
	memoryPages() int32
	allocs() uint64
}

var testHost fakeHost

func th() fakeHost {
	if testHost == nil {
		panic("tsubame: the host functions exist only under GOOS=wasip1")
	}
	return testHost
}

// put implements the (ptr, cap) -> len convention.
func put(ptr unsafe.Pointer, cap uint32, v []byte) int32 {
	if cap > 0 {
		copy(unsafe.Slice((*byte)(ptr), cap), v)
	}
	return int32(len(v))
}

func get(ptr unsafe.Pointer, n uint32) []byte {
	if n == 0 {
		return nil
	}
	return append([]byte(nil), unsafe.Slice((*byte)(ptr), n)...)
}

func hostKind(ptr unsafe.Pointer, cap uint32) int32  { return put(ptr, cap, th().kind()) }
func hostInput(ptr unsafe.Pointer, cap uint32) int32 { return put(ptr, cap, th().input()) }
func hostCont(ptr unsafe.Pointer, cap uint32) int32  { return put(ptr, cap, th().cont()) }
func hostCalls() int32                               { return th().calls() }
func hostChildCode(index int32) int32                { return th().childCode(index) }

func hostChild(index int32, ptr unsafe.Pointer, cap uint32) int32 {
	v, ok := th().child(index)
	if !ok {
		return -1
	}
	return put(ptr, cap, v)
}

func hostReply(ptr unsafe.Pointer, n uint32) { th().reply(get(ptr, n)) }

func hostCall(target unsafe.Pointer, targetLen uint32, kind unsafe.Pointer, kindLen uint32,
	input unsafe.Pointer, inputLen uint32, cont unsafe.Pointer, contLen uint32) {
	th().call(string(get(target, targetLen)), string(get(kind, kindLen)), get(input, inputLen), get(cont, contLen))
}

func hostFail(code uint32, msg unsafe.Pointer, n uint32) { th().fail(code, string(get(msg, n))) }
func hostLog(level int32, msg unsafe.Pointer, n uint32)  { th().log(level, string(get(msg, n))) }

func memoryPages() int32 { return th().memoryPages() }
func readAllocs() uint64 { return th().allocs() }
