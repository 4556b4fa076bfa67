package kv_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tsubame-rt/tsubame/abi"
	"github.com/tsubame-rt/tsubame/internal/testutil"
	"github.com/tsubame-rt/tsubame/lp"
	"github.com/tsubame-rt/tsubame/node/kv"
	"github.com/tsubame-rt/tsubame/wasmhost"
)

// op is one record of kvprobe's input (components-src/wat/kv/kvprobe.wat).
type op struct {
	code                 uint32 // 1 get, 2 set, 3 del, 4 add, 5 cas, 6 value
	bucket, key, val     string
	expect               *string // nil: absent (cas)
	ttl                  time.Duration
	delta                int32
	cap                  uint32
	vlen                 uint32 // overrides len(val) when set (limit tests)
	absentNoExpectRecord bool
}

func get(bucket, key string) op          { return op{code: 1, bucket: bucket, key: key, cap: 4096} }
func set(bucket, key, val string) op     { return op{code: 2, bucket: bucket, key: key, val: val} }
func del(bucket, key string) op          { return op{code: 3, bucket: bucket, key: key} }
func add(bucket, key string, d int32) op { return op{code: 4, bucket: bucket, key: key, delta: d} }
func cas(bucket, key string, expect *string, val string) op {
	return op{code: 5, bucket: bucket, key: key, expect: expect, val: val}
}
func value(cap uint32) op  { return op{code: 6, cap: cap} }
func str(s string) *string { return &s }

func encode(ops []op) []byte {
	var b []byte
	for _, o := range ops {
		el := uint32(0xFFFFFFFF)
		if o.expect != nil {
			el = uint32(len(*o.expect))
		}
		vlen := uint32(len(o.val))
		if o.vlen != 0 {
			vlen = o.vlen
		}
		for _, v := range []uint32{o.code, uint32(len(o.bucket)), uint32(len(o.key)), vlen, el,
			uint32(o.ttl.Milliseconds()), uint32(o.delta), o.cap} {
			b = binary.LittleEndian.AppendUint32(b, v)
		}
		b = append(b, o.bucket...)
		b = append(b, o.key...)
		b = append(b, o.val...)
		if o.expect != nil {
			b = append(b, *o.expect...)
		}
	}
	return b
}

// answer is what one operation returned: the i32 and the bytes the host
// wrote.
type answer struct {
	ret int32
	out []byte
}

func decode(t testing.TB, reply []byte) []answer {
	t.Helper()
	var out []answer
	for len(reply) > 0 {
		if len(reply) < 8 {
			t.Fatalf("short reply record: %x", reply)
		}
		ret, n := int32(binary.LittleEndian.Uint32(reply)), binary.LittleEndian.Uint32(reply[4:])
		out = append(out, answer{ret, bytes.Clone(reply[8 : 8+n])})
		reply = reply[8+n:]
	}
	return out
}

// env is a runtime with kvprobe loaded under several names, over a Store.
type env struct {
	t     testing.TB
	rt    *wasmhost.Runtime
	store *kv.Store
	mod   *wasmhost.Module
}

func newEnv(t testing.TB, c kv.Config) *env {
	t.Helper()
	store, err := kv.New(c, kv.Options{PingInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatalf("kv.New: %v", err)
	}
	t.Cleanup(func() { _ = store.Close() })
	ctx := context.Background()
	rt, err := wasmhost.New(ctx, wasmhost.NewConfig().WithKV(store).WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rt.Close(ctx) })
	wasm, err := os.ReadFile(filepath.Join("..", "..", "testdata", "kvprobe.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := rt.Load(ctx, wasm)
	if err != nil {
		t.Fatal(err)
	}
	return &env{t: t, rt: rt, store: store, mod: m}
}

// run runs one step of component comp on p (a fresh LP when nil) doing ops.
func (e *env) run(comp string, p *lp.Process, ops ...op) []answer {
	e.t.Helper()
	if p == nil {
		p = lp.New("test", comp, "probe", encode(ops))
	}
	res, err := e.mod.Step(context.Background(), comp, p)
	if err != nil {
		e.t.Fatalf("step: %v", err)
	}
	if res.Outcome != lp.OutcomeReply {
		e.t.Fatalf("step outcome %s, code %d: %s", res.Outcome, res.Code, res.Msg)
	}
	return decode(e.t, res.Output)
}

func (e *env) one(comp string, o op) answer {
	e.t.Helper()
	return e.run(comp, nil, o)[0]
}

// backends runs f against the memory backend and against a real Redis.
func backends(t *testing.T, f func(t *testing.T, c kv.Config)) {
	t.Run("memory", func(t *testing.T) { f(t, kv.Config{}) })
	t.Run("redis", func(t *testing.T) {
		r := testutil.StartRedis(t)
		f(t, redisConfig(r.URL()))
	})
}

func redisConfig(url string) kv.Config {
	return kv.Config{DefaultBackend: "shared",
		Backends: map[string]kv.BackendConfig{"shared": {Type: kv.Redis, URL: url, Timeout: 2 * time.Second}}}
}

func status(code int) int32 { return int32(-code) }

func TestOperations(t *testing.T) {
	backends(t, func(t *testing.T, c kv.Config) {
		e := newEnv(t, c)
		// A missing key, then set and get in one step, through the private
		// bucket both by name and as "".
		got := e.run("counter", nil, get("", "k"), set("", "k", "hello"), get("counter", "k"), value(2), value(64))
		want := []answer{{status(abi.KVNotFound), nil}, {0, nil}, {5, []byte("hello")}, {5, []byte("he")}, {5, []byte("hello")}}
		checkAnswers(t, got, want)

		// get with a short buffer reports the full length; kv_value reads
		// the rest without another operation.
		got = e.run("counter", nil, op{code: 1, key: "k", cap: 3}, value(16))
		checkAnswers(t, got, []answer{{5, []byte("hel")}, {5, []byte("hello")}})

		// del: found, then not found; kv_value in a step that read nothing.
		got = e.run("counter", nil, del("", "k"), del("", "k"), get("", "k"), value(8))
		checkAnswers(t, got, []answer{{0, nil}, {status(abi.KVNotFound), nil}, {status(abi.KVNotFound), nil}, {status(abi.KVNotFound), nil}})

		// add: a missing key counts as 0; negative deltas; not an integer.
		got = e.run("counter", nil, add("", "n", 5), add("", "n", -7), set("", "s", "x1"), add("", "s", 1))
		checkAnswers(t, got, []answer{{0, le64(5)}, {0, le64(-2)}, {0, nil}, {status(abi.KVNotInteger), nil}})
		if a := e.one("counter", get("", "n")); string(a.out) != "-2" {
			t.Errorf("add stores the decimal sum, got %q", a.out)
		}
		// overflow is not an integer either, and leaves the value alone
		got = e.run("counter", nil, set("", "big", "9223372036854775807"), add("", "big", 1), get("", "big"))
		checkAnswers(t, got, []answer{{0, nil}, {status(abi.KVNotInteger), nil}, {19, []byte("9223372036854775807")}})

		// cas: absent expectation, mismatch (kv_value reads the current
		// value), match.
		got = e.run("counter", nil, cas("", "c", nil, "v1"), cas("", "c", nil, "v2"), value(16),
			cas("", "c", str("nope"), "v3"), value(16), cas("", "c", str("v1"), "v4"), get("", "c"))
		checkAnswers(t, got, []answer{{0, nil}, {status(abi.KVMismatch), nil}, {2, []byte("v1")},
			{status(abi.KVMismatch), nil}, {2, []byte("v1")}, {0, nil}, {2, []byte("v4")}})
		// mismatch on an absent key: kv_value says not found
		got = e.run("counter", nil, cas("", "none", str("x"), "y"), value(16))
		checkAnswers(t, got, []answer{{status(abi.KVMismatch), nil}, {status(abi.KVNotFound), nil}})

		// binary keys and values, and an empty value
		got = e.run("counter", nil, set("", "\x00\xff{}*", "\x00\x01"), get("", "\x00\xff{}*"), set("", "e", ""), get("", "e"))
		checkAnswers(t, got, []answer{{0, nil}, {2, []byte{0, 1}}, {0, nil}, {0, nil}})

		// The operator's view of the same bucket.
		ctx := context.Background()
		if v, found, err := e.store.Get(ctx, "counter", []byte("c")); err != nil || !found || string(v) != "v4" {
			t.Errorf("Store.Get = %q, %v, %v", v, found, err)
		}
		keys, err := e.store.List(ctx, "counter", "", 0)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Join(sorted(keys), ",") != strings.Join(sorted([]string{"n", "s", "big", "c", "\x00\xff{}*", "e"}), ",") {
			t.Errorf("List = %q", keys)
		}
	})
}

func le64(n int64) []byte { return binary.LittleEndian.AppendUint64(nil, uint64(n)) }

func sorted(s []string) []string {
	out := append([]string(nil), s...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

func checkAnswers(t *testing.T, got, want []answer) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d answers, want %d: %v", len(got), len(want), got)
	}
	for i := range want {
		if got[i].ret != want[i].ret || !bytes.Equal(got[i].out, want[i].out) {
			t.Errorf("operation %d answered %d %q, want %d %q", i, got[i].ret, got[i].out, want[i].ret, want[i].out)
		}
	}
}

func TestGrants(t *testing.T) {
	backends(t, func(t *testing.T, c kv.Config) {
		c.Buckets = map[string]kv.BucketConfig{
			"shared": {Grant: []string{"a", "b"}},
			"c":      {Grant: []string{"a"}}, // c's private name, declared and not granted to c
		}
		e := newEnv(t, c)
		checkAnswers(t, e.run("a", nil, set("shared", "k", "from a"), set("", "own", "a's")),
			[]answer{{0, nil}, {0, nil}})
		// b shares the bucket but not a's private one
		checkAnswers(t, e.run("b", nil, get("shared", "k"), get("a", "own"), set("a", "own", "x")),
			[]answer{{6, []byte("from a")}, {status(abi.KVNotGranted), nil}, {status(abi.KVNotGranted), nil}})
		// a declared bucket named after a component is not that component's
		// unless granted; a may use it.
		checkAnswers(t, e.run("c", nil, set("", "k", "v"), set("c", "k", "v")),
			[]answer{{status(abi.KVNotGranted), nil}, {status(abi.KVNotGranted), nil}})
		checkAnswers(t, e.run("a", nil, set("c", "k", "v")), []answer{{0, nil}})
		// a bucket that does not exist is not granted either
		checkAnswers(t, e.run("a", nil, get("nowhere", "k")), []answer{{status(abi.KVNotGranted), nil}})
		// nothing was written by the refused operations
		if v, _, _ := e.store.Get(context.Background(), "a", []byte("own")); string(v) != "a's" {
			t.Errorf("a's value is %q after b's refused set", v)
		}
	})
}

func TestLimits(t *testing.T) {
	backends(t, func(t *testing.T, c kv.Config) {
		e := newEnv(t, c)
		long := strings.Repeat("k", abi.MaxKVKey)
		checkAnswers(t, e.run("lim", nil,
			set("", long, "max key"), get("", long),
			set("", long+"x", "v"),
			set(strings.Repeat("b", abi.MaxName+1), "k", "v"),
			set("9bad", "k", "v"),
			set("", "", "v"),
			op{code: 2, key: "t", ttl: time.Duration(abi.MaxKVTTLMilli+1) * time.Millisecond},
			// last: its value runs past the input, over memory's zeros
			op{code: 2, key: "big", vlen: abi.MaxKVValue + 1},
		), []answer{{0, nil}, {7, []byte("max key")}, {status(abi.KVTooLarge), nil},
			{status(abi.KVTooLarge), nil}, {status(abi.KVInvalid), nil}, {status(abi.KVInvalid), nil}, {status(abi.KVInvalid), nil},
			{status(abi.KVTooLarge), nil}})
		// a value of exactly the limit is stored whole
		checkAnswers(t, e.run("lim", nil, op{code: 2, key: "max", vlen: abi.MaxKVValue}), []answer{{0, nil}})
		checkAnswers(t, e.run("lim", nil, op{code: 1, key: "max", cap: 0}), []answer{{abi.MaxKVValue, nil}})
		// more than MaxKVOps operations in a step: the rest are refused
		ops := make([]op, abi.MaxKVOps+2)
		for i := range ops {
			ops[i] = add("", "n", 1)
		}
		got := e.run("lim", nil, ops...)
		if got[abi.MaxKVOps-1].ret != 0 || got[abi.MaxKVOps].ret != status(abi.KVTooLarge) {
			t.Errorf("operation %d answered %d, operation %d %d", abi.MaxKVOps-1, got[abi.MaxKVOps-1].ret, abi.MaxKVOps, got[abi.MaxKVOps].ret)
		}
		if v, _, _ := e.store.Get(context.Background(), "lim", []byte("n")); string(v) != "1024" {
			t.Errorf("counter after the refused operations = %q, want 1024", v)
		}
	})
}

func TestTTLExpiry(t *testing.T) {
	backends(t, func(t *testing.T, c kv.Config) {
		e := newEnv(t, c)
		ttl := op{code: 2, key: "t", val: "soon gone", ttl: 30 * time.Millisecond}
		forever := set("", "f", "stays")
		checkAnswers(t, e.run("ttl", nil, ttl, forever), []answer{{0, nil}, {0, nil}})
		testutil.WaitFor(t, "the value with a TTL to expire", func() bool {
			return e.one("ttl", get("", "t")).ret == status(abi.KVNotFound)
		})
		if a := e.one("ttl", get("", "f")); string(a.out) != "stays" {
			t.Errorf("the value without a TTL: %d %q", a.ret, a.out)
		}
		// cas with a TTL expires too; a set without one makes it permanent
		checkAnswers(t, e.run("ttl", nil, op{code: 5, key: "c", val: "x", ttl: 30 * time.Millisecond}), []answer{{0, nil}})
		testutil.WaitFor(t, "the cas value to expire", func() bool {
			return e.one("ttl", get("", "c")).ret == status(abi.KVNotFound)
		})
	})
}

// TestJournalOnce re-runs one step (the same LP, entry and position) as a
// resend or an unclear migration would: every operation answers as in the
// first run and none applies twice.
func TestJournalOnce(t *testing.T) {
	backends(t, func(t *testing.T, c kv.Config) {
		e := newEnv(t, c)
		ops := []op{add("", "n", 1), get("", "n"), cas("", "once", nil, "first"), set("", "log", "x"), del("", "gone")}
		p := lp.New("test", "once", "probe", encode(ops))
		p.Deadline = time.Now().Add(time.Minute).UnixNano()
		first := e.run("once", p)
		// Something else changes the store between the runs.
		checkAnswers(t, e.run("once", nil, set("", "gone", "back")), []answer{{0, nil}})
		for range 3 {
			again := e.run("once", p)
			checkAnswers(t, again, first)
		}
		if v, _, _ := e.store.Get(context.Background(), "once", []byte("n")); string(v) != "1" {
			t.Errorf("counter after 4 runs of one step = %q, want 1", v)
		}
		if v, found, _ := e.store.Get(context.Background(), "once", []byte("gone")); !found || string(v) != "back" {
			t.Errorf("the re-run deleted again: %q %v", v, found)
		}
		// Another step of the same LP (a resumed entry) is another identity.
		q := *p
		q.ID = lp.NewID()
		e.run("once", &q)
		if v, _, _ := e.store.Get(context.Background(), "once", []byte("n")); string(v) != "2" {
			t.Errorf("counter after a second LP = %q, want 2", v)
		}
	})
}

// TestJournalReplayMismatch: a re-run making a different operation at the
// same position fails the step with code 3 instead of being answered from
// the journal.
func TestJournalReplayMismatch(t *testing.T) {
	backends(t, func(t *testing.T, c kv.Config) {
		e := newEnv(t, c)
		p := lp.New("test", "nd", "probe", encode([]op{set("", "k", "one")}))
		e.run("nd", p)
		p.Entries[0].Input = encode([]op{set("", "k", "two")})
		res, err := e.mod.Step(context.Background(), "nd", p)
		if res.Outcome != lp.OutcomeFail || res.Code != abi.CodeABIViolation || !strings.Contains(res.Msg, "nondeterministic") {
			t.Fatalf("re-run with another operation: %s %d %q (%v)", res.Outcome, res.Code, res.Msg, err)
		}
		if v, _, _ := e.store.Get(context.Background(), "nd", []byte("k")); string(v) != "one" {
			t.Errorf("value after the refused re-run = %q", v)
		}
	})
}

// TestJournalOff: a bucket without a journal applies a re-run again.
func TestJournalOff(t *testing.T) {
	backends(t, func(t *testing.T, c kv.Config) {
		off := false
		c.Buckets = map[string]kv.BucketConfig{"cache": {Grant: []string{"x"}, Journal: &off}}
		e := newEnv(t, c)
		p := lp.New("test", "x", "probe", encode([]op{add("cache", "n", 1)}))
		e.run("x", p)
		e.run("x", p)
		if v, _, _ := e.store.Get(context.Background(), "cache", []byte("n")); string(v) != "2" {
			t.Errorf("counter = %q, want 2 without a journal", v)
		}
	})
}

func TestNoKVConfigured(t *testing.T) {
	ctx := context.Background()
	rt, err := wasmhost.New(ctx, wasmhost.NewConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close(ctx)
	wasm, _ := os.ReadFile(filepath.Join("..", "..", "testdata", "kvprobe.wasm"))
	m, err := rt.Load(ctx, wasm)
	if err != nil {
		t.Fatal(err)
	}
	res, err := m.Step(ctx, "x", lp.New("t", "x", "probe", encode([]op{get("", "k")})))
	if err != nil {
		t.Fatal(err)
	}
	checkAnswers(t, decode(t, res.Output), []answer{{status(abi.KVNotGranted), nil}})
}

func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		c    kv.Config
		want string
	}{
		{kv.Config{DefaultBackend: "nope"}, `kv.default_backend: no backend "nope"`},
		{kv.Config{Backends: map[string]kv.BackendConfig{"r": {Type: "redis"}}}, "kv.backends.r: url: missing"},
		{kv.Config{Backends: map[string]kv.BackendConfig{"r": {Type: "redis", URL: "http://x"}}}, "not a redis:// or rediss:// URL"},
		{kv.Config{Backends: map[string]kv.BackendConfig{"r": {Type: "redis", URL: "redis://x", Mode: "ring"}}}, `mode: "ring"`},
		{kv.Config{Backends: map[string]kv.BackendConfig{"r": {Type: "etcd"}}}, `kv.backends.r.type: "etcd" is not a backend type`},
		{kv.Config{Backends: map[string]kv.BackendConfig{"memory": {Type: "memory"}}}, "built-in"},
		{kv.Config{Buckets: map[string]kv.BucketConfig{"9x": {}}}, `kv.buckets.9x: "9x" is not a valid bucket name`},
		{kv.Config{Buckets: map[string]kv.BucketConfig{"b": {Backend: "r"}}}, `kv.buckets.b.backend: no backend "r"`},
		{kv.Config{Buckets: map[string]kv.BucketConfig{"b": {Grant: []string{""}}}}, "kv.buckets.b.grant"},
		{kv.Config{Backends: map[string]kv.BackendConfig{"r": {Type: "redis", URL: "redis://u:secret@h:1", TLSCA: "x"}}}, "tls_ca: set, but the URL is not rediss://"},
	} {
		err := tc.c.Validate("kv")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Validate(%+v) = %v, want %q", tc.c, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "secret") {
			t.Errorf("the error shows the password: %v", err)
		}
	}
}

// TestRedisDownAndBack stops Redis under a running store: operations answer
// unavailable (and a step that gets no answer applies nothing), health
// shows it, and once Redis is back the same steps go through, each applied
// once, with no half-written effect of the failed attempts.
func TestRedisDownAndBack(t *testing.T) {
	r := testutil.StartRedis(t)
	e := newEnv(t, redisConfig(r.URL()))
	ctx := context.Background()
	checkAnswers(t, e.run("c", nil, add("", "n", 1)), []answer{{0, le64(1)}})

	r.Stop()
	p := lp.New("test", "c", "probe", encode([]op{add("", "n", 1), set("", "k", "v")}))
	p.Deadline = time.Now().Add(time.Minute).UnixNano()
	got := e.run("c", p)
	checkAnswers(t, got, []answer{{status(abi.KVUnavailable), nil}, {status(abi.KVUnavailable), nil}})
	testutil.WaitFor(t, "the bucket to show unhealthy", func() bool {
		st := e.store.Status([]string{"c"})
		return len(st) == 1 && !st[0].Healthy && st[0].Error != ""
	})

	r.Start()
	testutil.WaitFor(t, "the bucket to show healthy again", func() bool {
		st := e.store.Status([]string{"c"})
		return len(st) == 1 && st[0].Healthy
	})
	// The same step again (the gateway's resend): it applies now, once.
	checkAnswers(t, e.run("c", p), []answer{{0, le64(1)}, {0, nil}})
	checkAnswers(t, e.run("c", p), []answer{{0, le64(1)}, {0, nil}})
	// Redis lost its data with the restart (no persistence): the count
	// starts over, and nothing of the failed attempt was written.
	if v, found, err := e.store.Get(ctx, "c", []byte("n")); err != nil || !found || string(v) != "1" {
		t.Errorf("counter = %q %v %v, want 1", v, found, err)
	}
}
