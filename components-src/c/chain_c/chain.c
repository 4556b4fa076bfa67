/* chain_c: the third link of the mixed-language chain
 * chain_go -> chain_rust -> chain_c -> chain_as. Kind "run" asks chain_as to
 * "run" on its input and replies "c(" + that + ")"; a failure of chain_as is
 * forwarded with its code and message. Explicit style.
 * Built by scripts/components/c.sh into testdata/chain_c.wasm. */
#include "tsubame.h"

static void step(void) {
	if (!ts_eq(ts_kind(), "run")) {
		ts_fail(404, "chain_c: no handler for this kind");
		return;
	}
	if (ts_calls() == 0) {
		ts_call("chain_as", "run", ts_input(), ts_bytes_empty());
		return;
	}
	int32_t code = ts_child_code(0);
	ts_bytes out = ts_child(0);
	if (code != 0) {
		ts_fail_bytes((uint32_t)code, out);
		return;
	}
	ts_buf b = {0, 0, 0};
	ts_buf_str(&b, "c(");
	ts_buf_bytes(&b, out);
	ts_buf_str(&b, ")");
	ts_reply(ts_buf_view(&b));
}

TSUBAME_STEP(step)
