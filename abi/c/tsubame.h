/*
 * tsubame.h: the Tsubame component ABI (version 1) for C, in one header.
 *
 * abi/ABI.md is the normative contract; this header wraps it for
 * clang --target=wasm32 with no libc at all (-nostdlib -ffreestanding
 * -mbulk-memory), or with wasi-libc (--target=wasm32-wasi
 * -mexec-model=reactor). Every value it reads from the host goes into a
 * per-step arena (a bump allocator, or malloc blocks with a libc) that is
 * freed at the start of each step, which is all a component needs because it
 * keeps no state between steps.
 *
 * Two styles (ABI.md section 6):
 *
 *   Explicit continuations: implement `void step(void)`, look at ts_calls()
 *   and ts_cont(), end with ts_reply / ts_call / ts_fail, and export it with
 *   TSUBAME_STEP(step).
 *
 *   Sequential calls by replay: implement `int handler(ts_seq *s)` which
 *   calls TS_CALL(s, target, kind, input, &result) in straight-line code and
 *   ends with ts_reply / ts_fail; export it with TSUBAME_SEQ(handler).
 *   TS_CALL returns TS_SUSPEND from the handler when the call has no result
 *   yet; the host runs the handler again from the top once it has one. The
 *   handler must make the same calls given the same input and results
 *   (the SDK checks this with fingerprints).
 *
 * Build a component (see docs/components.md):
 *
 *   clang-14 --target=wasm32 -O2 -nostdlib -ffreestanding -mbulk-memory \
 *     -I abi/c -Wl,--no-entry -Wl,--strip-all -o greet.wasm greet.c
 */
#ifndef TSUBAME_H
#define TSUBAME_H

#include <stddef.h>
#include <stdint.h>

#define TSUBAME_ABI_VERSION 1

/* Failure codes (ABI.md section 4). 100 and above are the component's. */
enum {
	TS_CODE_TRAP = 1,
	TS_CODE_TIMEOUT = 2,
	TS_CODE_ABI_VIOLATION = 3,
	TS_CODE_NO_COMPONENT = 4,
	TS_CODE_MEMORY_LIMIT = 5,
	TS_CODE_LIMIT = 6,
	TS_CODE_UNAVAILABLE = 7,
	TS_CODE_BAD_MODULE = 8,
	TS_CODE_INTERNAL = 9,
	TS_CODE_CANCELED = 10,
	TS_CODE_VERSION_GONE = 11,
	TS_CODE_USER = 100
};

/* Log levels for ts_log. */
enum { TS_DEBUG = 0, TS_INFO = 1, TS_WARN = 2, TS_ERROR = 3 };

/* ---- The raw host functions (import module "tsubame"). ---------------- */

#define TS__IMPORT(name) __attribute__((import_module("tsubame"), import_name(#name)))

TS__IMPORT(kind) int32_t tsubame_kind(void *ptr, uint32_t cap);
TS__IMPORT(input) int32_t tsubame_input(void *ptr, uint32_t cap);
TS__IMPORT(cont) int32_t tsubame_cont(void *ptr, uint32_t cap);
TS__IMPORT(calls) int32_t tsubame_calls(void);
TS__IMPORT(child_code) int32_t tsubame_child_code(int32_t index);
TS__IMPORT(child) int32_t tsubame_child(int32_t index, void *ptr, uint32_t cap);
TS__IMPORT(reply) void tsubame_reply(const void *ptr, uint32_t len);
TS__IMPORT(call) void tsubame_call(const void *target, uint32_t target_len, const void *kind,
                                   uint32_t kind_len, const void *input, uint32_t input_len,
                                   const void *cont, uint32_t cont_len);
TS__IMPORT(fail) void tsubame_fail(uint32_t code, const void *msg, uint32_t msg_len);
TS__IMPORT(log) void tsubame_log(uint32_t level, const void *msg, uint32_t msg_len);

/* ABI 1.1 key-value buckets (ABI.md section 10). A module imports only the
 * ones it calls. Each returns a length or 0, or minus a TS_KV_* status. */
TS__IMPORT(kv_get) int32_t tsubame_kv_get(const void *b, uint32_t bl, const void *k, uint32_t kl, void *v, uint32_t vcap);
TS__IMPORT(kv_value) int32_t tsubame_kv_value(void *v, uint32_t vcap);
TS__IMPORT(kv_set) int32_t tsubame_kv_set(const void *b, uint32_t bl, const void *k, uint32_t kl, const void *v,
                                          uint32_t vl, uint32_t ttl_ms);
TS__IMPORT(kv_del) int32_t tsubame_kv_del(const void *b, uint32_t bl, const void *k, uint32_t kl);
TS__IMPORT(kv_add) int32_t tsubame_kv_add(const void *b, uint32_t bl, const void *k, uint32_t kl, int32_t delta,
                                          int64_t *out);
TS__IMPORT(kv_cas) int32_t tsubame_kv_cas(const void *b, uint32_t bl, const void *k, uint32_t kl, const void *e,
                                          uint32_t el, const void *v, uint32_t vl, uint32_t ttl_ms);
TS__IMPORT(kv_after) int32_t tsubame_kv_after(uint32_t n);

/* KV statuses (negated in the functions' returns) and kv_cas's "expect the
 * key absent" length. */
enum {
	TS_KV_NOT_FOUND = 1,
	TS_KV_TOO_LARGE = 2,
	TS_KV_UNAVAILABLE = 3,
	TS_KV_NOT_GRANTED = 4,
	TS_KV_MISMATCH = 5,
	TS_KV_NOT_INTEGER = 6,
	TS_KV_INVALID = 7,
};
#define TS_KV_EXPECT_ABSENT 0xFFFFFFFFu
/* TS_CODE_STORE_DOWN is the failure code for a store that did not answer. */
#define TS_CODE_STORE_DOWN 12

/* ---- Freestanding support. --------------------------------------------- */

#if defined(__wasi__)
/* With wasi-libc (--target=wasm32-wasi) libc has memcpy and friends, and
 * the arena below takes its blocks from malloc. */
#include <stdlib.h>
#include <string.h>
#else
#if !defined(__wasm_bulk_memory__)
#error "tsubame.h without a libc needs -mbulk-memory: memcpy and memset become memory.copy and memory.fill"
#endif
/* clang lowers struct copies and loops to memcpy/memset calls; with
 * -mbulk-memory the builtins below become memory.copy/memory.fill. */
__attribute__((weak)) void *memcpy(void *d, const void *s, size_t n) {
	__builtin_memcpy(d, s, n);
	return d;
}
__attribute__((weak)) void *memmove(void *d, const void *s, size_t n) {
	__builtin_memmove(d, s, n);
	return d;
}
__attribute__((weak)) void *memset(void *d, int c, size_t n) {
	__builtin_memset(d, c, n);
	return d;
}
#endif

/* ---- Bytes and the per-step arena. ------------------------------------- */

/* ts_bytes is a borrowed byte string. */
typedef struct {
	const uint8_t *ptr;
	uint32_t len;
} ts_bytes;

static inline size_t ts__strlen(const char *s) {
	size_t n = 0;
	while (s[n])
		n++;
	return n;
}

/* ts_str views a NUL-terminated string as bytes (without the NUL). */
static inline ts_bytes ts_str(const char *s) {
	ts_bytes b = {(const uint8_t *)s, (uint32_t)ts__strlen(s)};
	return b;
}

/* ts_bytes_empty is the empty byte string. */
static inline ts_bytes ts_bytes_empty(void) {
	ts_bytes b = {0, 0};
	return b;
}

/* ts_eq reports whether b holds exactly the string s. */
static inline int ts_eq(ts_bytes b, const char *s) {
	uint32_t n = (uint32_t)ts__strlen(s);
	if (b.len != n)
		return 0;
	for (uint32_t i = 0; i < n; i++)
		if (b.ptr[i] != (uint8_t)s[i])
			return 0;
	return 1;
}

#if defined(__wasi__)
/* With a libc, malloc owns the heap: each ts_alloc is a malloc block on a
 * list that ts_reset frees. */
static void **ts__blocks;

/* ts_alloc returns n bytes (8-aligned) that live until the step ends, or
 * traps when memory cannot grow (the host reports the memory limit). */
static inline void *ts_alloc(uint32_t n) {
	void **b = (void **)malloc(2 * sizeof(void *) + n);
	if (!b)
		__builtin_trap();
	b[0] = ts__blocks;
	ts__blocks = b;
	return b + 2;
}

/* ts_reset frees everything ts_alloc returned; the step exports call it. */
static inline void ts_reset(void) {
	while (ts__blocks) {
		void **b = ts__blocks;
		ts__blocks = (void **)b[0];
		free(b);
	}
}
#else
/* Without a libc the heap is ours: a bump arena from __heap_base. */
extern unsigned char __heap_base;
static uintptr_t ts__arena_next;

/* ts_alloc returns n bytes (8-aligned) that live until the step ends, or
 * traps when memory cannot grow (the host reports the memory limit). */
static inline void *ts_alloc(uint32_t n) {
	if (ts__arena_next == 0)
		ts__arena_next = (uintptr_t)&__heap_base;
	uintptr_t p = (ts__arena_next + 7) & ~(uintptr_t)7;
	uintptr_t end = p + n;
	uintptr_t have = __builtin_wasm_memory_size(0) * 65536u;
	if (end < p)
		__builtin_trap();
	if (end > have) {
		uintptr_t pages = (end - have + 65535u) / 65536u;
		if (__builtin_wasm_memory_grow(0, pages) == (size_t)-1)
			__builtin_trap();
	}
	ts__arena_next = end;
	return (void *)p;
}

/* ts_reset frees everything ts_alloc returned; the step exports call it. */
static inline void ts_reset(void) { ts__arena_next = (uintptr_t)&__heap_base; }
#endif

/* ts_buf is a growable byte buffer in the arena, for building replies. */
typedef struct {
	uint8_t *ptr;
	uint32_t len, cap;
} ts_buf;

static inline void ts_buf_add(ts_buf *b, const void *p, uint32_t n) {
	if (b->len + n > b->cap) {
		uint32_t c = b->cap * 2 + n + 64;
		uint8_t *np = (uint8_t *)ts_alloc(c);
		if (b->len)
			memcpy(np, b->ptr, b->len);
		b->ptr = np;
		b->cap = c;
	}
	if (n)
		memcpy(b->ptr + b->len, p, n);
	b->len += n;
}
static inline void ts_buf_bytes(ts_buf *b, ts_bytes x) { ts_buf_add(b, x.ptr, x.len); }
static inline void ts_buf_str(ts_buf *b, const char *s) { ts_buf_add(b, s, (uint32_t)ts__strlen(s)); }
static inline void ts_buf_u32(ts_buf *b, uint32_t v) {
	char d[10];
	int n = 0;
	do {
		d[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	while (n)
		ts_buf_add(b, &d[--n], 1);
}
static inline ts_bytes ts_buf_view(const ts_buf *b) {
	ts_bytes x = {b->ptr, b->len};
	return x;
}

/* ---- Reading the active entry. ----------------------------------------- */

/* ts__read runs one (ptr, cap) -> len reader into the arena: a guess first,
 * a second call only when the value is larger. */
static inline ts_bytes ts__read(int32_t (*fn)(void *, uint32_t)) {
	uint32_t cap = 256;
	uint8_t *p = (uint8_t *)ts_alloc(cap);
	uint32_t n = (uint32_t)fn(p, cap);
	if (n > cap) {
		p = (uint8_t *)ts_alloc(n);
		fn(p, n);
	}
	ts_bytes b = {p, n};
	return b;
}

/* ts_kind: the request kind. */
static inline ts_bytes ts_kind(void) { return ts__read(tsubame_kind); }
/* ts_input: the request's input. */
static inline ts_bytes ts_input(void) { return ts__read(tsubame_input); }
/* ts_cont: the continuation saved by the last ts_call; empty on the first step. */
static inline ts_bytes ts_cont(void) { return ts__read(tsubame_cont); }
/* ts_calls: how many calls from this entry have finished. */
static inline int32_t ts_calls(void) { return tsubame_calls(); }
/* ts_child_code: 0 if call i replied, its failure code if it failed, -1 if none. */
static inline int32_t ts_child_code(int32_t i) { return tsubame_child_code(i); }

/* ts_child: the reply of call i, or its failure message; ptr NULL if none. */
static inline ts_bytes ts_child(int32_t i) {
	ts_bytes b = {0, 0};
	uint32_t cap = 256;
	uint8_t *p = (uint8_t *)ts_alloc(cap);
	int32_t n = tsubame_child(i, p, cap);
	if (n < 0)
		return b;
	if ((uint32_t)n > cap) {
		p = (uint8_t *)ts_alloc((uint32_t)n);
		tsubame_child(i, p, (uint32_t)n);
	}
	b.ptr = p;
	b.len = (uint32_t)n;
	return b;
}

/* ---- Ending the step. -------------------------------------------------- */

/* ts__done is set once the step has its outcome (or, in the sequential
 * style, once it suspended), so a late outcome from a handler that ignored a
 * suspension is dropped instead of breaking the one-outcome rule. While a
 * sequential handler runs (ts__hold), its reply or failure is held back until
 * the SDK has checked the replay. */
static int ts__done, ts__hold;
static struct {
	int op; /* 0 none, 1 reply, 2 fail */
	uint32_t code;
	ts_bytes data;
} ts__held;

static inline void ts_reply(ts_bytes b) {
	if (ts__done)
		return;
	ts__done = 1;
	if (ts__hold) {
		ts__held.op = 1;
		ts__held.data = b;
		return;
	}
	tsubame_reply(b.ptr, b.len);
}
static inline void ts_reply_str(const char *s) { ts_reply(ts_str(s)); }

/* ts_call asks target for kind with input and saves cont in this entry. */
static inline void ts_call(const char *target, const char *kind, ts_bytes input, ts_bytes cont) {
	if (ts__done)
		return;
	ts__done = 1;
	tsubame_call(target, (uint32_t)ts__strlen(target), kind, (uint32_t)ts__strlen(kind), input.ptr,
	             input.len, cont.ptr, cont.len);
}

/* ts_fail fails the entry with code (>= 1) and a message. */
static inline void ts_fail_bytes(uint32_t code, ts_bytes msg) {
	if (ts__done)
		return;
	ts__done = 1;
	if (ts__hold) {
		ts__held.op = 2;
		ts__held.code = code;
		ts__held.data = msg;
		return;
	}
	tsubame_fail(code, msg.ptr, msg.len);
}
static inline void ts_fail(uint32_t code, const char *msg) { ts_fail_bytes(code, ts_str(msg)); }

/* ts_fail_unknown_kind fails with 404 `no handler for kind "KIND"`, as the
 * Go SDK does for a kind it has no handler for. */
static inline void ts_fail_unknown_kind(ts_bytes kind) {
	ts_buf m = {0, 0, 0};
	ts_buf_str(&m, "no handler for kind \"");
	ts_buf_bytes(&m, kind);
	ts_buf_str(&m, "\"");
	ts_fail_bytes(404, ts_buf_view(&m));
}

/* ts_log writes msg to the node's log at level (TS_DEBUG .. TS_ERROR). */
static inline void ts_log(uint32_t level, const char *msg) {
	tsubame_log(level, msg, (uint32_t)ts__strlen(msg));
}
static inline void ts_log_bytes(uint32_t level, ts_bytes msg) { tsubame_log(level, msg.ptr, msg.len); }

/* ---- Key-value buckets (ABI 1.1, ABI.md section 10). ------------------ */

/* ts_kv_get reads key of bucket ("" is the component's private bucket) into
 * the arena: 0 and *out set, or a TS_KV_* status. A value larger than the
 * first guess is read again with kv_value, not a second operation. */
static inline int32_t ts_kv_get(const char *bucket, ts_bytes key, ts_bytes *out) {
	uint32_t cap = 256;
	uint8_t *p = (uint8_t *)ts_alloc(cap);
	int32_t n = tsubame_kv_get(bucket, (uint32_t)ts__strlen(bucket), key.ptr, key.len, p, cap);
	if (n < 0) return -n;
	if ((uint32_t)n > cap) {
		p = (uint8_t *)ts_alloc((uint32_t)n);
		tsubame_kv_value(p, (uint32_t)n);
	}
	out->ptr = p;
	out->len = (uint32_t)n;
	return 0;
}
/* ts_kv_set stores val under key; ttl_ms 0 keeps it. 0 or a TS_KV_* status. */
static inline int32_t ts_kv_set(const char *bucket, ts_bytes key, ts_bytes val, uint32_t ttl_ms) {
	return -tsubame_kv_set(bucket, (uint32_t)ts__strlen(bucket), key.ptr, key.len, val.ptr, val.len, ttl_ms);
}
/* ts_kv_del deletes key: 0, TS_KV_NOT_FOUND or another status. */
static inline int32_t ts_kv_del(const char *bucket, ts_bytes key) {
	return -tsubame_kv_del(bucket, (uint32_t)ts__strlen(bucket), key.ptr, key.len);
}
/* ts_kv_add adds delta atomically and sets *sum: 0 or a TS_KV_* status. */
static inline int32_t ts_kv_add(const char *bucket, ts_bytes key, int32_t delta, int64_t *sum) {
	return -tsubame_kv_add(bucket, (uint32_t)ts__strlen(bucket), key.ptr, key.len, delta, sum);
}
/* ts_kv_cas stores val only if key's value is expect (expect.ptr NULL: only
 * if key is absent): 0, TS_KV_MISMATCH or another status. */
static inline int32_t ts_kv_cas(const char *bucket, ts_bytes key, ts_bytes expect, ts_bytes val, uint32_t ttl_ms) {
	uint32_t el = expect.ptr ? expect.len : TS_KV_EXPECT_ABSENT;
	return -tsubame_kv_cas(bucket, (uint32_t)ts__strlen(bucket), key.ptr, key.len, expect.ptr, el, val.ptr, val.len,
	                       ttl_ms);
}

/* ---- Sequential calls by deterministic replay (ABI.md section 6). ------ */

#define TS_SUSPEND (-1)

/* ts_result is the result of one call: code 0 and the reply, or the child's
 * failure code and message. */
typedef struct {
	int32_t code;
	ts_bytes out;
} ts_result;

/* ts_seq is the state of one sequential step. */
typedef struct {
	int32_t next;     /* number of the next call the handler makes */
	int32_t finished; /* calls() at the start of the step */
	ts_bytes cont;    /* "TSQ1" + one little-endian u64 fingerprint per call */
	int stopped;      /* the handler must unwind: suspended or replay mismatch */
	int32_t mismatch; /* 1 + the call whose fingerprint differs, or 0 */
	const char *target, *kind;
	ts_bytes input; /* the pending call, made when the handler unwinds */
	uint64_t fp;
} ts_seq;

/* ts_fingerprint is FNV-1a 64 over target, 0x00, kind, 0x00, input. */
static inline uint64_t ts_fingerprint(ts_bytes target, ts_bytes kind, ts_bytes input) {
	uint64_t h = 0xcbf29ce484222325ull;
	const ts_bytes parts[3] = {target, kind, input};
	for (int k = 0; k < 3; k++) {
		if (k > 0)
			h = (h ^ 0) * 0x100000001b3ull;
		for (uint32_t i = 0; i < parts[k].len; i++)
			h = (h ^ parts[k].ptr[i]) * 0x100000001b3ull;
	}
	return h;
}

static inline uint64_t ts__le64(const uint8_t *p) {
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

/* ts_seq_kv tells the host, before KV operations in a sequential handler,
 * how many calls the handler has made so far, so that an operation replayed
 * on a later step is answered from the journal of the step that first made
 * it (ABI.md section 10, kv_after). Call it before each group of ts_kv_*
 * calls that follows a ts_seq_call. */
static inline void ts_seq_kv(const ts_seq *s) { tsubame_kv_after((uint32_t)s->next); }

/* ts_seq_call makes call number s->next. If it has a recorded result it
 * stores it in *r and returns 0; otherwise it remembers the call and returns
 * TS_SUSPEND, and the handler must return TS_SUSPEND (use TS_CALL). */
static inline int ts_seq_call(ts_seq *s, const char *target, const char *kind, ts_bytes input,
                              ts_result *r) {
	if (s->stopped)
		return TS_SUSPEND;
	int32_t i = s->next++;
	uint64_t fp = ts_fingerprint(ts_str(target), ts_str(kind), input);
	if (i < s->finished) {
		if (ts__le64(s->cont.ptr + 4 + 8 * (uint32_t)i) != fp) {
			s->stopped = 1;
			s->mismatch = i + 1;
			ts__done = 1;
			return TS_SUSPEND;
		}
		r->code = ts_child_code(i);
		r->out = ts_child(i);
		return 0;
	}
	s->stopped = 1;
	ts__done = 1; /* drop any outcome the handler tries after ignoring this */
	s->target = target;
	s->kind = kind;
	s->input = input;
	s->fp = fp;
	return TS_SUSPEND;
}

/* TS_CALL makes a sequential call from a handler and returns TS_SUSPEND from
 * it when the result is not there yet. */
#define TS_CALL(s, target, kind, input, r)                                                         \
	do {                                                                                       \
		if (ts_seq_call((s), (target), (kind), (input), (r)) != 0)                         \
			return TS_SUSPEND;                                                         \
	} while (0)

static inline void ts__replay_fail(int32_t call) {
	ts_buf m = {0, 0, 0};
	ts_buf_str(&m, "nondeterministic replay at call ");
	ts_buf_u32(&m, (uint32_t)call);
	ts__done = 0;
	ts_fail_bytes(TS_CODE_ABI_VIOLATION, ts_buf_view(&m));
}

/* ts_seq_run runs one step of a sequential handler; components that mix
 * styles call it from their explicit step. */
static inline void ts_seq_run(int (*handler)(ts_seq *)) {
	ts_seq s;
	memset(&s, 0, sizeof s);
	s.finished = ts_calls();
	s.cont = ts_cont();
	uint32_t want = s.finished > 0 ? 4 + 8 * (uint32_t)s.finished : 0;
	if (s.cont.len != want || (want > 0 && !(s.cont.ptr[0] == 'T' && s.cont.ptr[1] == 'S' &&
	                                          s.cont.ptr[2] == 'Q' && s.cont.ptr[3] == '1'))) {
		ts_fail(TS_CODE_ABI_VIOLATION, "sequential continuation does not match the finished calls");
		return;
	}
	ts__hold = 1;
	ts__held.op = 0;
	handler(&s);
	ts__hold = 0;
	if (s.mismatch) {
		ts__replay_fail(s.mismatch - 1);
		return;
	}
	if (s.target != 0) {
		ts_buf c = {0, 0, 0};
		ts_buf_add(&c, "TSQ1", 4);
		if (s.finished > 0)
			ts_buf_add(&c, s.cont.ptr + 4, 8 * (uint32_t)s.finished);
		uint8_t fp[8];
		for (int i = 0; i < 8; i++)
			fp[i] = (uint8_t)(s.fp >> (8 * i));
		ts_buf_add(&c, fp, 8);
		ts__done = 0;
		ts_call(s.target, s.kind, s.input, ts_buf_view(&c));
		return;
	}
	if (s.next < s.finished) { /* fewer calls than last time */
		ts__replay_fail(s.next);
		return;
	}
	ts__done = 0;
	if (ts__held.op == 2)
		ts_fail_bytes(ts__held.code, ts__held.data);
	else if (ts__held.op == 1)
		ts_reply(ts__held.data);
	else
		ts_fail(TS_CODE_ABI_VIOLATION, "sequential handler ended with no reply and no failure");
}

/* ---- Exports. ---------------------------------------------------------- */

#define TSUBAME__VERSION_EXPORT                                                                    \
	__attribute__((export_name("tsubame_abi_version"))) int32_t tsubame_abi_version(void) {    \
		return TSUBAME_ABI_VERSION;                                                        \
	}

/* TSUBAME_STEP(fn) exports the ABI version and fn as the explicit-style step. */
#define TSUBAME_STEP(fn)                                                                           \
	TSUBAME__VERSION_EXPORT                                                                    \
	__attribute__((export_name("tsubame_step"))) void tsubame_step(void) {                     \
		ts_reset();                                                                        \
		ts__done = 0;                                                                      \
		ts__hold = 0;                                                                      \
		fn();                                                                              \
	}

/* TSUBAME_SEQ(handler) exports the ABI version and a step that runs handler
 * in the sequential style. */
#define TSUBAME_SEQ(handler)                                                                       \
	TSUBAME__VERSION_EXPORT                                                                    \
	__attribute__((export_name("tsubame_step"))) void tsubame_step(void) {                     \
		ts_reset();                                                                        \
		ts__done = 0;                                                                      \
		ts__hold = 0;                                                                      \
		ts_seq_run(handler);                                                               \
	}

#endif /* TSUBAME_H */
