// conformance_as: the conformance kinds (conformance/kinds.md) in
// AssemblyScript, with both continuation styles. conformance/ runs one table
// of behaviours against this module and its twins in every other language.
// Built by scripts/components/as.sh into testdata/conformance_as.wasm.
import * as ts from "tsubame";
export { tsubame_abi_version } from "tsubame";

// Field splits an input at its first space.
class Field {
  constructor(public head: Uint8Array, public rest: Uint8Array) {}
}

function field(b: Uint8Array): Field {
  for (let i = 0; i < b.length; i++) {
    if (b[i] == 0x20) return new Field(b.subarray(0, i), b.subarray(i + 1));
  }
  return new Field(b, b.subarray(b.length));
}

function num(b: Uint8Array): u32 {
  let v: u32 = 0;
  for (let i = 0; i < b.length && b[i] >= 0x30 && b[i] <= 0x39; i++) v = v * 10 + (<u32>b[i] - 0x30);
  return v;
}

function pattern(i: u32): u8 {
  return <u8>(i * 7 + 3);
}

// CallArgs is a "TARGET KIND REST" input.
class CallArgs {
  target: string;
  kind: string;
  rest: Uint8Array;
  constructor(b: Uint8Array) {
    let t = field(b);
    let k = field(t.rest);
    this.target = ts.text(t.head);
    this.kind = ts.text(k.head);
    this.rest = k.rest;
  }
}

function forward(i: i32): void {
  let code = ts.childCode(i);
  let out = ts.child(i);
  if (out == null) return ts.fail(100, "conformance: no result");
  if (code == 0) ts.reply(out);
  else ts.failBytes(<u32>code, out);
}

function doCall(input: Uint8Array): void {
  if (ts.calls() == 0) {
    let a = new CallArgs(input);
    ts.call(a.target, a.kind, a.rest, ts.utf8("call:1"));
    return;
  }
  if (ts.text(ts.cont()) != "call:1") return ts.fail(100, "conformance: lost continuation");
  forward(ts.calls() - 1);
}

function doCatch(input: Uint8Array): void {
  if (ts.calls() == 0) {
    let a = new CallArgs(input);
    ts.call(a.target, a.kind, a.rest, new Uint8Array(0));
    return;
  }
  let code = ts.childCode(0);
  let out = ts.child(0);
  if (out == null) return ts.fail(100, "conformance: no result");
  if (code == 0) ts.reply(ts.concat(ts.utf8("ok: "), out));
  else ts.reply(ts.concat(ts.utf8("failed " + code.toString() + ": "), out));
}

function doCont(input: Uint8Array): void {
  let f = field(input);
  let n = num(f.rest);
  if (ts.calls() == 0) {
    let c = new Uint8Array(n);
    for (let i: u32 = 0; i < n; i++) c[i] = pattern(i);
    ts.call(ts.text(f.head), "echo", ts.utf8("x"), c);
    return;
  }
  let c = ts.cont();
  let ok = <u32>c.length == n;
  for (let i: u32 = 0; ok && i < n; i++) ok = c[i] == pattern(i);
  if (!ok) return ts.fail(100, "conformance: continuation changed");
  ts.replyString("cont ok " + n.toString());
}

function seq(s: ts.Seq): void {
  let a = new CallArgs(ts.input());
  let x = s.call(a.target, a.kind, a.rest);
  if (x == null) return;
  if (!x.ok) return ts.failBytes(<u32>x.code, x.out);
  let y = s.call(a.target, a.kind, x.out);
  if (y == null) return;
  if (!y.ok) return ts.failBytes(<u32>y.code, y.out);
  ts.reply(ts.concat(ts.concat(x.out, ts.utf8("|")), y.out));
}

function loop(s: ts.Seq): void {
  let a = new CallArgs(ts.input());
  let n = num(a.rest);
  let out = new Uint8Array(0);
  for (let i: u32 = 0; i < n; i++) {
    let x = s.call(a.target, a.kind, ts.utf8(i.toString()));
    if (x == null) return;
    if (!x.ok) return ts.failBytes(<u32>x.code, x.out);
    if (i > 0) out = ts.concat(out, ts.utf8(","));
    out = ts.concat(out, x.out);
  }
  ts.reply(out);
}

// nondet breaks the replay rule on purpose: the call's input depends on calls().
function nondet(s: ts.Seq): void {
  let a = new CallArgs(ts.input());
  let x = s.call(a.target, a.kind, ts.utf8(ts.calls().toString()));
  if (x == null) return;
  ts.reply(x.out);
}

function step(): void {
  let kind = ts.kind();
  let input = ts.input();
  if (kind == "echo") {
    ts.reply(input);
  } else if (kind == "greet") {
    ts.reply(ts.concat(ts.utf8("Hello, "), input));
  } else if (kind == "fail") {
    let f = field(input);
    ts.failBytes(num(f.head), f.rest);
  } else if (kind == "call") {
    doCall(input);
  } else if (kind == "catch") {
    doCatch(input);
  } else if (kind == "cont") {
    doCont(input);
  } else if (kind == "seq") {
    ts.runSeq(seq);
  } else if (kind == "loop") {
    ts.runSeq(loop);
  } else if (kind == "nondet") {
    ts.runSeq(nondet);
  } else if (kind == "log") {
    let f = field(input);
    ts.log(num(f.head), ts.text(f.rest));
    ts.replyString("logged");
  } else if (kind == "big") {
    let n = num(input);
    let out = new Uint8Array(n);
    for (let i: u32 = 0; i < n; i++) out[i] = <u8>(0x61 + (i % 26));
    ts.reply(out);
  } else if (kind == "size") {
    let sum: u32 = 0;
    for (let i = 0; i < input.length; i++) sum += input[i];
    ts.replyString(input.length.toString() + " " + sum.toString());
  } else if (kind == "trap") {
    unreachable();
  } else {
    ts.failUnknownKind(kind);
  }
}

export function tsubame_step(): void {
  ts.runStep(step);
}
