/* conformance_c: the conformance kinds (conformance/kinds.md) in C, with
 * both continuation styles. conformance/ runs one table of behaviours against
 * this module and its twins in every other language.
 * Built by scripts/components/c.sh into testdata/conformance_c.wasm. */
#include "tsubame.h"

/* field splits b at its first space: the part before goes to *head, the rest
 * (after the space) stays in *b. With no space, *head is all of b. */
static ts_bytes field(ts_bytes *b) {
	uint32_t i = 0;
	while (i < b->len && b->ptr[i] != ' ')
		i++;
	ts_bytes head = {b->ptr, i};
	uint32_t skip = i < b->len ? i + 1 : i;
	b->ptr += skip;
	b->len -= skip;
	return head;
}

/* cstr copies b into the arena with a trailing NUL. */
static const char *cstr(ts_bytes b) {
	char *s = (char *)ts_alloc(b.len + 1);
	memcpy(s, b.ptr, b.len);
	s[b.len] = 0;
	return s;
}

static uint32_t num(ts_bytes b) {
	uint32_t v = 0;
	for (uint32_t i = 0; i < b.len && b.ptr[i] >= '0' && b.ptr[i] <= '9'; i++)
		v = v * 10 + (uint32_t)(b.ptr[i] - '0');
	return v;
}

static uint8_t pattern(uint32_t i) { return (uint8_t)(i * 7 + 3); }

/* forward replies with call i's reply or fails with its code and message. */
static void forward(int32_t i) {
	int32_t code = ts_child_code(i);
	ts_bytes out = ts_child(i);
	if (code == 0)
		ts_reply(out);
	else
		ts_fail_bytes((uint32_t)code, out);
}

/* call: explicit style, one call, the child's outcome forwarded. The
 * continuation is a marker checked on resume. */
static void do_call(ts_bytes in) {
	if (ts_calls() == 0) {
		ts_bytes t = field(&in), k = field(&in);
		ts_call(cstr(t), cstr(k), in, ts_str("call:1"));
		return;
	}
	if (!ts_eq(ts_cont(), "call:1")) {
		ts_fail(100, "conformance: lost continuation");
		return;
	}
	forward(ts_calls() - 1);
}

/* catch: like call, but the child's failure is read, not forwarded. */
static void do_catch(ts_bytes in) {
	if (ts_calls() == 0) {
		ts_bytes t = field(&in), k = field(&in);
		ts_call(cstr(t), cstr(k), in, ts_bytes_empty());
		return;
	}
	int32_t code = ts_child_code(0);
	ts_bytes out = ts_child(0);
	ts_buf b = {0, 0, 0};
	if (code == 0) {
		ts_buf_str(&b, "ok: ");
	} else {
		ts_buf_str(&b, "failed ");
		ts_buf_u32(&b, (uint32_t)code);
		ts_buf_str(&b, ": ");
	}
	ts_buf_bytes(&b, out);
	ts_reply(ts_buf_view(&b));
}

/* cont: saves N pattern bytes as the continuation and checks them on resume. */
static void do_cont(ts_bytes in) {
	ts_bytes t = field(&in);
	uint32_t n = num(in);
	if (ts_calls() == 0) {
		uint8_t *c = (uint8_t *)ts_alloc(n);
		for (uint32_t i = 0; i < n; i++)
			c[i] = pattern(i);
		ts_bytes cb = {c, n};
		ts_call(cstr(t), "echo", ts_str("x"), cb);
		return;
	}
	ts_bytes c = ts_cont();
	int ok = c.len == n;
	for (uint32_t i = 0; ok && i < n; i++)
		ok = c.ptr[i] == pattern(i);
	if (!ok) {
		ts_fail(100, "conformance: continuation changed");
		return;
	}
	ts_buf b = {0, 0, 0};
	ts_buf_str(&b, "cont ok ");
	ts_buf_u32(&b, n);
	ts_reply(ts_buf_view(&b));
}

/* seq: sequential style, a = call(T, K, REST), b = call(T, K, a), a|b. */
static int seq(ts_seq *s) {
	ts_bytes in = ts_input();
	const char *t = cstr(field(&in)), *k = cstr(field(&in));
	ts_result a, b;
	TS_CALL(s, t, k, in, &a);
	if (a.code) {
		ts_fail_bytes((uint32_t)a.code, a.out);
		return 0;
	}
	TS_CALL(s, t, k, a.out, &b);
	if (b.code) {
		ts_fail_bytes((uint32_t)b.code, b.out);
		return 0;
	}
	ts_buf r = {0, 0, 0};
	ts_buf_bytes(&r, a.out);
	ts_buf_str(&r, "|");
	ts_buf_bytes(&r, b.out);
	ts_reply(ts_buf_view(&r));
	return 0;
}

/* loop: sequential style, N calls with inputs "0".."N-1", replies joined by ",". */
static int loop(ts_seq *s) {
	ts_bytes in = ts_input();
	const char *t = cstr(field(&in)), *k = cstr(field(&in));
	uint32_t n = num(in);
	ts_buf r = {0, 0, 0};
	for (uint32_t i = 0; i < n; i++) {
		ts_buf arg = {0, 0, 0};
		ts_buf_u32(&arg, i);
		ts_result x;
		TS_CALL(s, t, k, ts_buf_view(&arg), &x);
		if (x.code) {
			ts_fail_bytes((uint32_t)x.code, x.out);
			return 0;
		}
		if (i > 0)
			ts_buf_str(&r, ",");
		ts_buf_bytes(&r, x.out);
	}
	ts_reply(ts_buf_view(&r));
	return 0;
}

/* nondet: sequential style that breaks the rule on purpose: its call's input
 * depends on calls(), which changes between runs. */
static int nondet(ts_seq *s) {
	ts_bytes in = ts_input();
	const char *t = cstr(field(&in)), *k = cstr(field(&in));
	ts_buf arg = {0, 0, 0};
	ts_buf_u32(&arg, (uint32_t)ts_calls());
	ts_result x;
	TS_CALL(s, t, k, ts_buf_view(&arg), &x);
	ts_reply(x.out);
	return 0;
}

static void step(void) {
	ts_bytes kind = ts_kind(), in = ts_input();
	if (ts_eq(kind, "echo")) {
		ts_reply(in);
	} else if (ts_eq(kind, "greet")) {
		ts_buf b = {0, 0, 0};
		ts_buf_str(&b, "Hello, ");
		ts_buf_bytes(&b, in);
		ts_reply(ts_buf_view(&b));
	} else if (ts_eq(kind, "fail")) {
		uint32_t code = num(field(&in));
		ts_fail_bytes(code, in);
	} else if (ts_eq(kind, "call")) {
		do_call(in);
	} else if (ts_eq(kind, "catch")) {
		do_catch(in);
	} else if (ts_eq(kind, "cont")) {
		do_cont(in);
	} else if (ts_eq(kind, "seq")) {
		ts_seq_run(seq);
	} else if (ts_eq(kind, "loop")) {
		ts_seq_run(loop);
	} else if (ts_eq(kind, "nondet")) {
		ts_seq_run(nondet);
	} else if (ts_eq(kind, "log")) {
		uint32_t level = num(field(&in));
		ts_log_bytes(level, in);
		ts_reply_str("logged");
	} else if (ts_eq(kind, "big")) {
		uint32_t n = num(in);
		uint8_t *p = (uint8_t *)ts_alloc(n);
		for (uint32_t i = 0; i < n; i++)
			p[i] = (uint8_t)('a' + i % 26);
		ts_bytes b = {p, n};
		ts_reply(b);
	} else if (ts_eq(kind, "size")) {
		uint32_t sum = 0;
		for (uint32_t i = 0; i < in.len; i++)
			sum += in.ptr[i];
		ts_buf b = {0, 0, 0};
		ts_buf_u32(&b, in.len);
		ts_buf_str(&b, " ");
		ts_buf_u32(&b, sum);
		ts_reply(ts_buf_view(&b));
	} else if (ts_eq(kind, "trap")) {
		__builtin_trap();
	} else {
		ts_fail_unknown_kind(kind);
	}
}

TSUBAME_STEP(step)
