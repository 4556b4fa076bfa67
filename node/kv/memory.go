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
// touched, and by each write, which pops what has expired from the front of
// two queues in the order things were written: amortized O(1), where a sweep
// of the whole bucket would cost a write as much as the bucket is large.
type MemoryBackend struct {
	mu      sync.Mutex
	buckets map[string]*memBucket
	now     func() time.Time
}

type memBucket struct {
	mu      sync.Mutex
	data    map[string]memItem
	journal map[jkey]memRecord
	// ttls and records list what may expire, in the order written; an
	// entry whose expiry was since changed is skipped when popped.
	ttls    fifo[string]
	records fifo[jkey]
}

// jkey is a journal record's key: the step and the operation's number.
type jkey struct {
	step wasmhost.StepID
	seq  int
}

// fifo is a queue of keys with their expiry, popped from the front.
type fifo[K comparable] struct {
	items []expiring[K]
	head  int
}

type expiring[K comparable] struct {
	key     K
	expires time.Time
}

func (q *fifo[K]) push(k K, t time.Time) { q.items = append(q.items, expiring[K]{k, t}) }

// popExpired calls drop for each entry at the front that expired by now.
// Entries behind a longer-lived one wait for it (lookups check expiry
// themselves), so the queue stays amortized O(1) per push.
func (q *fifo[K]) popExpired(now time.Time, drop func(K, time.Time)) {
	for q.head < len(q.items) && !now.Before(q.items[q.head].expires) {
		e := q.items[q.head]
		q.items[q.head] = expiring[K]{}
		q.head++
		drop(e.key, e.expires)
	}
	if q.head > 1024 && q.head > len(q.items)/2 {
		q.items = append(q.items[:0], q.items[q.head:]...)
		q.head = 0
	}
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
		b = &memBucket{data: map[string]memItem{}, journal: map[jkey]memRecord{}}
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
	var jk jkey
	if j != nil {
		jk = jkey{j.Step, j.Seq}
		if rec, ok := b.journal[jk]; ok && now.Before(rec.expires) {
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
		b.journal[jk] = memRecord{print: j.Print, res: rec, expires: j.Expires}
		b.records.push(jk, j.Expires)
	}
	if op.Kind != wasmhost.KVGet || j != nil {
		b.expire(now)
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
		b.store(key, bytes.Clone(op.Value), expiry(now, op.TTL))
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
		b.store(key, bytes.Clone(op.Value), expiry(now, op.TTL))
		return wasmhost.KVResult{}
	}
	return wasmhost.KVResult{Status: abi.KVInvalid}
}

// expire drops the values and journal records that expired by now from
// the fronts of their queues.
func (b *memBucket) expire(now time.Time) {
	b.ttls.popExpired(now, func(k string, t time.Time) {
		if it, ok := b.data[k]; ok && it.expires.Equal(t) {
			delete(b.data, k)
		}
	})
	b.records.popExpired(now, func(k jkey, t time.Time) {
		if rec, ok := b.journal[k]; ok && rec.expires.Equal(t) {
			delete(b.journal, k)
		}
	})
}

// store sets key's value with its expiry, queueing it if it has one.
func (b *memBucket) store(key string, val []byte, expires time.Time) {
	b.data[key] = memItem{val: val, expires: expires}
	if !expires.IsZero() {
		b.ttls.push(key, expires)
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
