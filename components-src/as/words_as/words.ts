// words_as: text transforms in AssemblyScript.
//   kind "count": reply "LINES WORDS BYTES" of the input, like wc (words are
//                 runs of bytes other than ASCII space, tab, CR and LF)
//   kind "upper": reply the input with ASCII letters upper-cased (other
//                 bytes, UTF-8 included, unchanged)
// Built by scripts/components/as.sh into testdata/words_as.wasm.
import * as ts from "tsubame";
export { tsubame_abi_version } from "tsubame";

function isSpace(c: u8): bool {
  return c == 0x20 || c == 0x09 || c == 0x0a || c == 0x0d;
}

function count(b: Uint8Array): string {
  let lines = 0;
  let words = 0;
  let inWord = false;
  for (let i = 0; i < b.length; i++) {
    let c = b[i];
    if (c == 0x0a) lines++;
    if (isSpace(c)) {
      inWord = false;
    } else if (!inWord) {
      inWord = true;
      words++;
    }
  }
  return lines.toString() + " " + words.toString() + " " + b.length.toString();
}

function upper(b: Uint8Array): Uint8Array {
  let out = new Uint8Array(b.length);
  for (let i = 0; i < b.length; i++) {
    let c = b[i];
    out[i] = c >= 0x61 && c <= 0x7a ? c - 0x20 : c;
  }
  return out;
}

function step(): void {
  let kind = ts.kind();
  if (kind == "count") {
    ts.replyString(count(ts.input()));
  } else if (kind == "upper") {
    ts.reply(upper(ts.input()));
  } else {
    ts.failUnknownKind(kind);
  }
}

export function tsubame_step(): void {
  ts.runStep(step);
}
