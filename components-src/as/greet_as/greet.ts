// greet_as: the greet component in AssemblyScript, the twin of
// components-src/go/greet: kind "greet" replies "Hello, " + input; an empty
// input fails with 400 (the gateway answers HTTP 400), any other kind with
// 404. Built by scripts/components/as.sh into testdata/greet_as.wasm.
import * as ts from "tsubame";
export { tsubame_abi_version } from "tsubame";

function step(): void {
  let kind = ts.kind();
  if (kind != "greet") return ts.failUnknownKind(kind);
  let input = ts.input();
  if (input.length == 0) return ts.fail(400, "greet: empty name");
  ts.reply(ts.concat(ts.utf8("Hello, "), input));
}

export function tsubame_step(): void {
  ts.runStep(step);
}
