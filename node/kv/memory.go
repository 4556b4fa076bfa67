package kv

import (
	"bytes"
	"context"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/tsubame-rt/tsubame/abi"
	"github.com/tsubame-rt/tsubame/wasmhost"
)

// MemoryBackend keeps buckets in this process's memory: shared by every
// node of the process (`tsubame demo`), lost when it exits, and seen by no
// other process. Expired values and journal records are dropped when next
// touched and by a sweep every SweepEvery operations of a bucket.
type MemoryBackend struct {
	mu      sync.Mutex
	buckets map[string]*memBucket
	now     func() time.Time
}

// SweepEvery is how many writes to a memory bucket pass between sweeps of
// its expired values and journal records.
const SweepEvery = 4096

type memBucket struct {
	mu      sync.Mutex
	data    map[string]memItem
	journal map[string]memRecord
	writes  int
}

type memItem struct {
	val     []byte
	expires time.Time // zero: never
}

type memRecord struct {
	print   uint64
	res     wasmhost.KVResult
	expires time.Time
}

// NewMemory returns an empty memory backend.
func NewMemory() *MemoryBackend {
	return &MemoryBackend{buckets: map[string]*memBucket{}, now: time.Now}
}

func (m *MemoryBackend) bucket(name string) *memBucket {
	m.mu.Lock()
	defer m.mu.Unlock()
	b := m.buckets[name]
	if b == nil {
		b = &memBucket{data: map[string]memItem{}, journal: map[string]memRecord{}}
		m.buckets[name] = b
	}
	return b
}

// Apply implements Backend. One bucket's operations are serialized, which
// makes each one, with its journal record, atomic.
func (m *MemoryBackend) Apply(_ context.Context, bucket string, op *wasmhost.KVOp, j *Journal) wasmhost.KVResult {
	b := m.bucket(bucket)
	now := m.now()
	b.mu.Lock()
	defer b.mu.Unlock()
	if j != nil {
		if rec, ok := b.journal[j.Key]; ok && now.Before(rec.expires) {
			if rec.print != j.Print {
				return wasmhost.KVResult{Status: abi.KVInvalid, Err: replayError(op, j)}
			}
			return rec.res
		}
	}
	r := b.apply(now, op)
	if j != nil {
		// The record keeps its own copy: the caller may not keep r.
		rec := r
		rec.Value = bytes.Clone(r.Value)
		b.journal[j.Key] = memRecord{print: j.Print, res: rec, expires: j.Expires}
	}
	if op.Kind != wasmhost.KVGet || j != nil {
		if b.writes++; b.writes%SweepEvery == 0 {
			b.sweep(now)
		}
	}
	return r
}

func (b *memBucket) get(now time.Time, key string) (memItem, bool) {
	it, ok := b.data[key]
	if ok && !it.expires.IsZero() && !now.Before(it.expires) {
		delete(b.data, key)
		return memItem{}, false
	}
	return it, ok
}

func expiry(now time.Time, ttl time.Duration) time.Time {
	if ttl <= 0 {
		return time.Time{}
	}
	return now.Add(ttl)
}

func (b *memBucket) apply(now time.Time, op *wasmhost.KVOp) wasmhost.KVResult {
	key := string(op.Key)
	switch op.Kind {
	case wasmhost.KVGet:
		it, ok := b.get(now, key)
		if !ok {
			return wasmhost.KVResult{Status: abi.KVNotFound}
		}
		return wasmhost.KVResult{Value: bytes.Clone(it.val), Found: true}
	case wasmhost.KVSet:
		b.data[key] = memItem{val: bytes.Clone(op.Value), expires: expiry(now, op.TTL)}
		return wasmhost.KVResult{}
	case wasmhost.KVDel:
		if _, ok := b.get(now, key); !ok {
			return wasmhost.KVResult{Status: abi.KVNotFound}
		}
		delete(b.data, key)
		return wasmhost.KVResult{}
	case wasmhost.KVAdd:
		it, ok := b.get(now, key)
		var n int64
		if ok {
			var err error
			if n, err = strconv.ParseInt(string(it.val), 10, 64); err != nil {
				return wasmhost.KVResult{Status: abi.KVNotInteger}
			}
		}
		sum := n + op.Delta
		if (op.Delta > 0 && sum < n) || (op.Delta < 0 && sum > n) {
			return wasmhost.KVResult{Status: abi.KVNotInteger}
		}
		it.val = strconv.AppendInt(it.val[:0:0], sum, 10) // a new array: a get may hold the old one
		b.data[key] = it                                  // INCRBY keeps the TTL; so does this
		return wasmhost.KVResult{Int: sum}
	case wasmhost.KVCAS:
		it, ok := b.get(now, key)
		match := !ok && op.ExpectAbsent || ok && !op.ExpectAbsent && bytes.Equal(it.val, op.Expect)
		if !match {
			return wasmhost.KVResult{Status: abi.KVMismatch, Value: bytes.Clone(it.val), Found: ok}
		}
		b.data[key] = memItem{val: bytes.Clone(op.Value), expires: expiry(now, op.TTL)}
		return wasmhost.KVResult{}
	}
	return wasmhost.KVResult{Status: abi.KVInvalid}
}

func (b *memBucket) sweep(now time.Time) {
	for k, it := range b.data {
		if !it.expires.IsZero() && !now.Before(it.expires) {
			delete(b.data, k)
		}
	}
	for k, rec := range b.journal {
		if !now.Before(rec.expires) {
			delete(b.journal, k)
		}
	}
}

// List implements Backend: keys in byte order.
func (m *MemoryBackend) List(_ context.Context, bucket, after string, limit int) ([]string, error) {
	b := m.bucket(bucket)
	now := m.now()
	b.mu.Lock()
	keys := make([]string, 0, len(b.data))
	for k, it := range b.data {
		if k > after && (it.expires.IsZero() || now.Before(it.expires)) {
			keys = append(keys, k)
		}
	}
	b.mu.Unlock()
	sort.Strings(keys)
	if limit > 0 && len(keys) > limit {
		keys = keys[:limit]
	}
	return keys, nil
}

// Ping implements Backend: memory always answers.
func (m *MemoryBackend) Ping(context.Context) error { return nil }

// Type implements Backend.
func (m *MemoryBackend) Type() string { return Memory }

// Close implements Backend.
func (m *MemoryBackend) Close() error { return nil }

var _ Backend = (*MemoryBackend)(nil)
