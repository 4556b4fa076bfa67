package kv

import (
	"context"
	"testing"
	"time"

	"github.com/tsubame-rt/tsubame/abi"
	"github.com/tsubame-rt/tsubame/lp"
	"github.com/tsubame-rt/tsubame/wasmhost"
)

// TestMemoryExpiryQueues: expired values and journal records leave the
// maps as later writes pass, a value re-set with a later expiry (or none)
// is not dropped by its old queue entry, and a record is answered until it
// expires.
func TestMemoryExpiryQueues(t *testing.T) {
	m := NewMemory()
	now := time.Unix(1000, 0)
	m.now = func() time.Time { return now }
	ctx := context.Background()
	set := func(key string, ttl time.Duration, j *Journal) wasmhost.KVResult {
		return m.Apply(ctx, "b", &wasmhost.KVOp{Kind: wasmhost.KVSet, Key: []byte(key), Value: []byte("v"), TTL: ttl}, j)
	}
	set("short", time.Second, nil)
	set("kept", time.Second, nil)
	set("kept", 0, nil) // re-set without a TTL: its queue entry must not drop it
	step := wasmhost.StepID{LP: lp.NewID()}
	j := &Journal{Step: step, Print: 1, Expires: now.Add(2 * time.Second)}
	if r := m.Apply(ctx, "b", &wasmhost.KVOp{Kind: wasmhost.KVAdd, Key: []byte("n"), Delta: 1}, j); r.Status != 0 || r.Int != 1 {
		t.Fatalf("add: %+v", r)
	}
	now = now.Add(1500 * time.Millisecond)
	set("other", 0, nil) // a write pops what expired
	b := m.bucket("b")
	if _, ok := b.data["short"]; ok {
		t.Error("the expired value is still in the map")
	}
	if _, ok := b.data["kept"]; !ok {
		t.Error("the value re-set without a TTL was dropped")
	}
	// The record still answers: a re-run gets 1 again, applies nothing.
	if r := m.Apply(ctx, "b", &wasmhost.KVOp{Kind: wasmhost.KVAdd, Key: []byte("n"), Delta: 1}, j); r.Int != 1 {
		t.Errorf("re-run before expiry: %+v", r)
	}
	now = now.Add(time.Second)
	set("other", 0, nil)
	if len(b.journal) != 0 {
		t.Errorf("%d journal records left after they expired", len(b.journal))
	}
	// After expiry the same identity applies again (the LP is past its
	// deadline plus margin: nobody runs it any more).
	if r := m.Apply(ctx, "b", &wasmhost.KVOp{Kind: wasmhost.KVAdd, Key: []byte("n"), Delta: 1}, j); r.Int != 2 || r.Status != abi.KVOK {
		t.Errorf("after expiry: %+v", r)
	}
}
