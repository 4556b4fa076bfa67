// AssemblyScript SDK for Tsubame components, ABI version 1 (abi/ABI.md is
// the normative contract). No dependencies beyond the AssemblyScript standard
// library; it keeps no request state between steps.
//
// Two styles (ABI.md section 6):
//
//   Explicit continuations: read the entry with kind(), input(), cont(),
//   calls(), childCode(), child() and end the step with reply(), call() or
//   fail(). Export:
//
//     export { tsubame_abi_version } from "<path>/tsubame";
//     export function tsubame_step(): void { ts.runStep(step); }
//
//   Sequential calls by deterministic replay: a handler (s: Seq) => void calls
//   s.call(target, kind, input) in straight-line code. A null result means
//   the call has no result yet: return at once, the host runs the handler
//   again from the top when it has one. End with reply() or fail().
//
//     export function tsubame_step(): void { ts.runSeq(handler); }
//
// Build (scripts/components/as.sh does this):
//
//   asc greet.ts -O3 --runtime incremental --exportStart _initialize \
//     --use abort=~lib/tsubame-abort --noAssert -o greet.wasm
//   (see docs/components.md for the abort hook)

@external("tsubame", "kind")
declare function _kind(ptr: usize, cap: u32): i32;
@external("tsubame", "input")
declare function _input(ptr: usize, cap: u32): i32;
@external("tsubame", "cont")
declare function _cont(ptr: usize, cap: u32): i32;
@external("tsubame", "calls")
declare function _calls(): i32;
@external("tsubame", "child_code")
declare function _childCode(index: i32): i32;
@external("tsubame", "child")
declare function _child(index: i32, ptr: usize, cap: u32): i32;
@external("tsubame", "reply")
declare function _reply(ptr: usize, len: u32): void;
@external("tsubame", "call")
declare function _call(tp: usize, tl: u32, kp: usize, kl: u32, ip: usize, il: u32, cp: usize, cl: u32): void;
@external("tsubame", "fail")
declare function _fail(code: u32, ptr: usize, len: u32): void;
@external("tsubame", "log")
declare function _log(level: u32, ptr: usize, len: u32): void;

export const ABI_VERSION: i32 = 1;

// Failure codes (ABI.md section 4); CODE_USER and up are the component's.
export const CODE_TRAP: u32 = 1;
export const CODE_ABI_VIOLATION: u32 = 3;
export const CODE_NO_COMPONENT: u32 = 4;
export const CODE_LIMIT: u32 = 6;
export const CODE_INTERNAL: u32 = 9;
export const CODE_USER: u32 = 100;

// Log levels.
export const LOG_DEBUG: u32 = 0;
export const LOG_INFO: u32 = 1;
export const LOG_WARN: u32 = 2;
export const LOG_ERROR: u32 = 3;

export function tsubame_abi_version(): i32 {
  return ABI_VERSION;
}

// utf8 encodes s without a trailing NUL.
export function utf8(s: string): Uint8Array {
  return Uint8Array.wrap(String.UTF8.encode(s));
}

// text decodes UTF-8 bytes.
export function text(b: Uint8Array): string {
  return String.UTF8.decodeUnsafe(b.dataStart, b.length);
}

// concat joins byte strings.
export function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  let out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}

// Runs one (ptr, cap) -> len reader: a guess first, again if too small.
function read(which: i32): Uint8Array {
  let b = new Uint8Array(256);
  let n = readInto(which, b);
  if (n > 256) {
    b = new Uint8Array(n);
    readInto(which, b);
    return b;
  }
  return b.subarray(0, n);
}

function readInto(which: i32, b: Uint8Array): i32 {
  if (which == 0) return _kind(b.dataStart, b.length);
  if (which == 1) return _input(b.dataStart, b.length);
  return _cont(b.dataStart, b.length);
}

// kind is the active entry's request kind.
export function kind(): string {
  return text(read(0));
}

// input is the active entry's input bytes.
export function input(): Uint8Array {
  return read(1);
}

// cont is the continuation saved with this entry's last call(); empty on the
// first step.
export function cont(): Uint8Array {
  return read(2);
}

// calls is how many calls made from this entry have finished.
export function calls(): i32 {
  return _calls();
}

// childCode is 0 if call i replied, its failure code if it failed, -1 if
// there is no such call.
export function childCode(i: i32): i32 {
  return _childCode(i);
}

// child is the reply of call i, or its failure message; null if none.
export function child(i: i32): Uint8Array | null {
  let b = new Uint8Array(256);
  let n = _child(i, b.dataStart, 256);
  if (n < 0) return null;
  if (n > 256) {
    b = new Uint8Array(n);
    _child(i, b.dataStart, n);
    return b;
  }
  return b.subarray(0, n);
}

// done is set once the step has its outcome, so an outcome after it (from a
// handler that ignored a suspension) is dropped instead of breaking the
// one-outcome rule.
let done = false;
// While a sequential handler runs (hold), its reply or failure is held back
// until the SDK has checked the replay.
let hold = false;
let heldOp = 0; // 0 none, 1 reply, 2 fail
let heldCode: u32 = 0;
let heldData = new Uint8Array(0);

// reply ends the step with out as the entry's result.
export function reply(out: Uint8Array): void {
  if (done) return;
  done = true;
  if (hold) {
    heldOp = 1;
    heldData = out;
    return;
  }
  _reply(out.dataStart, out.length);
}

export function replyString(s: string): void {
  reply(utf8(s));
}

// call asks target for kind with input and saves cont in this entry.
export function call(target: string, kind: string, input: Uint8Array, cont: Uint8Array): void {
  if (done) return;
  done = true;
  let t = utf8(target);
  let k = utf8(kind);
  _call(t.dataStart, t.length, k.dataStart, k.length, input.dataStart, input.length, cont.dataStart, cont.length);
}

// fail ends the step with a failure code (>= 1) and message.
export function fail(code: u32, msg: string): void {
  failBytes(code, utf8(msg));
}

export function failBytes(code: u32, msg: Uint8Array): void {
  if (done) return;
  done = true;
  if (hold) {
    heldOp = 2;
    heldCode = code;
    heldData = msg;
    return;
  }
  _fail(code, msg.dataStart, msg.length);
}

// failUnknownKind fails with 404 `no handler for kind "KIND"`, as the Go
// SDK does for a kind it has no handler for.
export function failUnknownKind(kind: string): void {
  fail(404, 'no handler for kind "' + kind + '"');
}

// log writes msg to the node's log at level (LOG_DEBUG .. LOG_ERROR).
export function log(level: u32, msg: string): void {
  let b = utf8(msg);
  _log(level, b.dataStart, b.length);
}

// runStep runs one explicit-style step.
export function runStep(step: () => void): void {
  done = false;
  hold = false;
  step();
}

// fingerprint is FNV-1a 64 over target, 0x00, kind, 0x00, input.
export function fingerprint(target: Uint8Array, kind: Uint8Array, input: Uint8Array): u64 {
  let h: u64 = 0xcbf29ce484222325;
  for (let i = 0; i < target.length; i++) h = (h ^ <u64>target[i]) * 0x100000001b3;
  h = h * 0x100000001b3;
  for (let i = 0; i < kind.length; i++) h = (h ^ <u64>kind[i]) * 0x100000001b3;
  h = h * 0x100000001b3;
  for (let i = 0; i < input.length; i++) h = (h ^ <u64>input[i]) * 0x100000001b3;
  return h;
}

// Result is one finished call: code 0 and the reply, or the child's failure
// code and message.
export class Result {
  constructor(public code: i32, public out: Uint8Array) {}
  get ok(): bool {
    return this.code == 0;
  }
  text(): string {
    return text(this.out);
  }
}

// Seq is the state of one sequential step.
export class Seq {
  next: i32 = 0;
  finished: i32 = 0;
  saved: Uint8Array = new Uint8Array(0);
  stopped: bool = false;
  target: string = "";
  kind: string = "";
  input: Uint8Array = new Uint8Array(0);
  fp: u64 = 0;
  pending: bool = false;
  mismatch: i32 = 0; // 1 + the call whose fingerprint differs, or 0

  // call makes the handler's next call and returns its result, or null when
  // it has none yet: then return from the handler at once.
  call(target: string, kind: string, input: Uint8Array): Result | null {
    if (this.stopped) return null;
    let i = this.next++;
    let fp = fingerprint(utf8(target), utf8(kind), input);
    if (i < this.finished) {
      let at = 4 + 8 * i;
      let got: u64 = 0;
      for (let j = 7; j >= 0; j--) got = (got << 8) | <u64>this.saved[at + j];
      if (got != fp) {
        this.stopped = true;
        this.mismatch = i + 1;
        done = true;
        return null;
      }
      let out = child(i);
      return new Result(childCode(i), out == null ? new Uint8Array(0) : out);
    }
    this.stopped = true;
    this.pending = true;
    done = true; // drop any outcome the handler tries after ignoring this
    this.target = target;
    this.kind = kind;
    this.input = input;
    this.fp = fp;
    return null;
  }
}

// runSeq runs one step of a sequential handler; components that mix styles
// call it from their explicit step.
export function runSeq(handler: (s: Seq) => void): void {
  done = false;
  hold = false;
  let s = new Seq();
  s.finished = calls();
  s.saved = cont();
  let want = s.finished > 0 ? 4 + 8 * s.finished : 0;
  let magic = s.saved.length >= 4 && s.saved[0] == 0x54 && s.saved[1] == 0x53 && s.saved[2] == 0x51 && s.saved[3] == 0x31;
  if (s.saved.length != want || (want > 0 && !magic)) {
    fail(CODE_ABI_VIOLATION, "sequential continuation does not match the finished calls");
    return;
  }
  hold = true;
  heldOp = 0;
  handler(s);
  hold = false;
  done = false;
  if (s.mismatch > 0) {
    fail(CODE_ABI_VIOLATION, "nondeterministic replay at call " + (s.mismatch - 1).toString());
    return;
  }
  if (s.pending) {
    let c = new Uint8Array(4 + 8 * (s.finished + 1));
    c[0] = 0x54; c[1] = 0x53; c[2] = 0x51; c[3] = 0x31;
    for (let j = 4; j < want; j++) c[j] = s.saved[j];
    let at = 4 + 8 * s.finished;
    for (let j = 0; j < 8; j++) c[at + j] = <u8>(s.fp >> (8 * <u64>j));
    call(s.target, s.kind, s.input, c);
    return;
  }
  if (s.next < s.finished) {
    // The handler finished with fewer calls than it made last time.
    fail(CODE_ABI_VIOLATION, "nondeterministic replay at call " + s.next.toString());
    return;
  }
  if (heldOp == 1) reply(heldData);
  else if (heldOp == 2) failBytes(heldCode, heldData);
  else fail(CODE_ABI_VIOLATION, "sequential handler ended with no reply and no failure");
}

// abort replaces AssemblyScript's env.abort import (build with
// --use abort=<this file>/abort, see docs/components.md): it logs the
// message at error level and traps, which fails the entry with code 1.
export function abort(message: string | null, fileName: string | null, line: u32, column: u32): void {
  let m = "abort: " + (message ? message : "") + " at " + (fileName ? fileName : "?") + ":" + line.toString() + ":" + column.toString();
  log(LOG_ERROR, m);
  unreachable();
}
