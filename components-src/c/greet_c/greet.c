/* greet_c: kind "greet" replies "Hello, " + input, like every greet_<lang>.
 * Built by scripts/components/c.sh into testdata/greet_c.wasm. */
#include "tsubame.h"

static void step(void) {
	if (!ts_eq(ts_kind(), "greet")) {
		ts_fail(404, "greet_c: unknown kind");
		return;
	}
	ts_buf b = {0, 0, 0};
	ts_buf_str(&b, "Hello, ");
	ts_buf_bytes(&b, ts_input());
	ts_reply(ts_buf_view(&b));
}

TSUBAME_STEP(step)
