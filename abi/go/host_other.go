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

// fakeKV is the key-value part of the host (ABI 1.1), for tests that use
// Bucket; a fakeHost need not implement it.
type fakeKV interface {
	kvGet(bucket, key string) ([]byte, int32)
	kvSet(bucket, key string, val []byte, ttlMs uint32) int32
	kvDel(bucket, key string) int32
	kvAdd(bucket, key string, delta int32) (int64, int32)
	kvCAS(bucket, key string, expect []byte, absent bool, val []byte, ttlMs uint32) ([]byte, int32)
	kvAfter(n uint32) int32
}

// fakeKVState keeps what kv_value reads back.
var fakeKVLast []byte
var fakeKVFound bool

func tkv() fakeKV {
	kv, ok := th().(fakeKV)
	if !ok {
		panic("tsubame: the test host has no key-value store")
	}
	return kv
}

func hostKVGet(b unsafe.Pointer, bl uint32, k unsafe.Pointer, kl uint32, v unsafe.Pointer, vcap uint32) int32 {
	val, st := tkv().kvGet(string(get(b, bl)), string(get(k, kl)))
	fakeKVLast, fakeKVFound = val, st >= 0
	if st < 0 {
		return st
	}
	return put(v, vcap, val)
}

func hostKVValue(v unsafe.Pointer, vcap uint32) int32 {
	if !fakeKVFound {
		return -1
	}
	return put(v, vcap, fakeKVLast)
}

func hostKVSet(b unsafe.Pointer, bl uint32, k unsafe.Pointer, kl uint32, v unsafe.Pointer, vl uint32, ttlMs uint32) int32 {
	return tkv().kvSet(string(get(b, bl)), string(get(k, kl)), get(v, vl), ttlMs)
}

func hostKVDel(b unsafe.Pointer, bl uint32, k unsafe.Pointer, kl uint32) int32 {
	return tkv().kvDel(string(get(b, bl)), string(get(k, kl)))
}

func hostKVAdd(b unsafe.Pointer, bl uint32, k unsafe.Pointer, kl uint32, delta int32, out unsafe.Pointer) int32 {
	n, st := tkv().kvAdd(string(get(b, bl)), string(get(k, kl)), delta)
	if st == 0 {
		*(*int64)(out) = n
	}
	return st
}

func hostKVCAS(b unsafe.Pointer, bl uint32, k unsafe.Pointer, kl uint32, e unsafe.Pointer, el uint32,
	v unsafe.Pointer, vl uint32, ttlMs uint32) int32 {
	absent := el == 0xFFFFFFFF
	var expect []byte
	if !absent {
		expect = get(e, el)
	}
	cur, st := tkv().kvCAS(string(get(b, bl)), string(get(k, kl)), expect, absent, get(v, vl), ttlMs)
	if st == -5 {
		fakeKVLast, fakeKVFound = cur, cur != nil
	}
	return st
}

func hostKVAfter(n uint32) int32 { return tkv().kvAfter(n) }
