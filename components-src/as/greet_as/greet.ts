// greet_as: kind "greet" replies "Hello, " + input, like every greet_<lang>.
// Built by scripts/components/as.sh into testdata/greet_as.wasm.
import * as ts from "tsubame";
export { tsubame_abi_version } from "tsubame";

function step(): void {
  if (ts.kind() != "greet") {
    ts.fail(404, "greet_as: unknown kind");
    return;
  }
  ts.reply(ts.concat(ts.utf8("Hello, "), ts.input()));
}

export function tsubame_step(): void {
  ts.runStep(step);
}
