// chain_as: the last link of the mixed-language chain
// chain_go -> chain_rust -> chain_c -> chain_as. Kind "run" replies
// "as(" + input + ")"; the input "fail" fails with 502 instead, so a test can
// watch a failure travel back up the chain.
// Built by scripts/components/as.sh into testdata/chain_as.wasm.
import * as ts from "tsubame";
export { tsubame_abi_version } from "tsubame";

function step(): void {
  if (ts.kind() != "run") return ts.fail(404, "chain_as: no handler for this kind");
  let input = ts.input();
  if (ts.text(input) == "fail") return ts.fail(502, "chain_as: asked to fail");
  ts.reply(ts.concat(ts.concat(ts.utf8("as("), input), ts.utf8(")")));
}

export function tsubame_step(): void {
  ts.runStep(step);
}
