/* greet_c: the greet component in C, the twin of components-src/go/greet:
 * kind "greet" replies "Hello, " + input; an empty input fails with 400 (the
 * gateway answers HTTP 400), any other kind with 404.
 * Built by scripts/components/c.sh into testdata/greet_c.wasm. */
#include "tsubame.h"

static void step(void) {
	ts_bytes kind = ts_kind(), in = ts_input();
	if (!ts_eq(kind, "greet")) {
		ts_fail_unknown_kind(kind);
		return;
	}
	if (in.len == 0) {
		ts_fail(400, "greet: empty name");
		return;
	}
	ts_buf b = {0, 0, 0};
	ts_buf_str(&b, "Hello, ");
	ts_buf_bytes(&b, in);
	ts_reply(ts_buf_view(&b));
}

TSUBAME_STEP(step)
