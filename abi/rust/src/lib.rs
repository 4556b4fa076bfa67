//! Guest SDK for Tsubame components, ABI version 1 (abi/ABI.md is the
//! normative contract).
//!
//! The crate has no dependencies and is `no_std` (it needs `alloc`): a
//! component built with std gets its allocator and panic handler from std.
//! It never keeps request state between steps; everything a component needs
//! later goes into the continuation.
//!
//! Two styles (ABI.md §6):
//!
//! * Explicit continuations: free functions [`kind`], [`input`], [`cont`],
//!   [`calls`], [`child`] read the active entry, and [`reply`], [`call`],
//!   [`fail`] end the step. Export a `fn()` with [`export_step!`].
//! * Sequential calls by deterministic replay: a handler
//!   `fn(&mut Seq) -> Result<Vec<u8>, Error>` calls [`Seq::call`] in
//!   straight-line code and uses `?`: a call without a result yet returns
//!   [`Error::Suspend`], which unwinds the handler, and a failed child returns
//!   [`Error::Failed`], which `?` forwards with its code and message. Export
//!   it with [`export_seq!`].
//!
//! Build with plain rustc (no cargo needed):
//!
//! ```text
//! rustc --edition 2021 --crate-type rlib --crate-name tsubame \
//!   --target wasm32-unknown-unknown -C opt-level=s -C panic=abort \
//!   abi/rust/src/lib.rs -o libtsubame.rlib
//! rustc --edition 2021 --crate-type cdylib --target wasm32-unknown-unknown \
//!   -C opt-level=s -C panic=abort -C strip=symbols \
//!   --extern tsubame=libtsubame.rlib -o greet.wasm greet.rs
//! ```
#![no_std]

extern crate alloc;

use alloc::string::String;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, Ordering};

/// The ABI version this SDK implements; `tsubame_abi_version` returns it.
pub const ABI_VERSION: i32 = 1;

/// Failure codes (ABI.md §4). Codes from [`code::USER`] up are the component's.
pub mod code {
    pub const TRAP: u32 = 1;
    pub const TIMEOUT: u32 = 2;
    pub const ABI_VIOLATION: u32 = 3;
    pub const NO_COMPONENT: u32 = 4;
    pub const MEMORY_LIMIT: u32 = 5;
    pub const LIMIT: u32 = 6;
    pub const UNAVAILABLE: u32 = 7;
    pub const BAD_MODULE: u32 = 8;
    pub const INTERNAL: u32 = 9;
    pub const CANCELED: u32 = 10;
    pub const VERSION_GONE: u32 = 11;
    pub const USER: u32 = 100;
}

/// Log levels for [`log`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Debug = 0,
    Info = 1,
    Warn = 2,
    Error = 3,
}

/// The raw host functions of import module `tsubame`.
pub mod sys {
    #[link(wasm_import_module = "tsubame")]
    extern "C" {
        pub fn kind(ptr: *mut u8, cap: u32) -> i32;
        pub fn input(ptr: *mut u8, cap: u32) -> i32;
        pub fn cont(ptr: *mut u8, cap: u32) -> i32;
        pub fn calls() -> i32;
        pub fn child_code(index: i32) -> i32;
        pub fn child(index: i32, ptr: *mut u8, cap: u32) -> i32;
        pub fn reply(ptr: *const u8, len: u32);
        #[allow(clippy::too_many_arguments)]
        pub fn call(
            target: *const u8,
            target_len: u32,
            kind: *const u8,
            kind_len: u32,
            input: *const u8,
            input_len: u32,
            cont: *const u8,
            cont_len: u32,
        );
        pub fn fail(code: u32, msg: *const u8, msg_len: u32);
        pub fn log(level: u32, msg: *const u8, msg_len: u32);
    }
}

/// A failed call's code (≥ 1) and message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    pub code: u32,
    pub msg: String,
}

impl Failure {
    pub fn new(code: u32, msg: impl Into<String>) -> Failure {
        Failure { code, msg: msg.into() }
    }
}

/// What ends a sequential handler early.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Error {
    /// The call has no result yet (or the step already has its outcome):
    /// return it from the handler, the SDK makes the call.
    Suspend,
    /// Fail the entry with this code and message; a failed child arrives as
    /// this, so `?` forwards it unchanged.
    Failed(Failure),
}

impl From<Failure> for Error {
    fn from(f: Failure) -> Error {
        Error::Failed(f)
    }
}

/// Runs one `(ptr, cap) -> len` reader: the length first, then the bytes
/// straight into a vector of that capacity (no zeroing, no regrowth).
fn read(f: unsafe extern "C" fn(*mut u8, u32) -> i32) -> Vec<u8> {
    let n = unsafe { f(core::ptr::null_mut(), 0) } as u32 as usize;
    let mut b = Vec::with_capacity(n);
    if n > 0 {
        let got = unsafe { f(b.as_mut_ptr(), n as u32) } as u32 as usize;
        // SAFETY: the host wrote min(got, n) bytes into the capacity.
        unsafe { b.set_len(got.min(n)) };
    }
    b
}

/// The active entry's request kind (ASCII; at most 64 bytes, so it is
/// read into a stack buffer).
pub fn kind() -> String {
    let mut b = [0u8; 64];
    let n = unsafe { sys::kind(b.as_mut_ptr(), b.len() as u32) } as u32 as usize;
    if n > b.len() {
        return String::from_utf8(read(sys::kind)).unwrap_or_default();
    }
    core::str::from_utf8(&b[..n]).unwrap_or_default().into()
}

/// The active entry's input.
pub fn input() -> Vec<u8> {
    read(sys::input)
}

/// The continuation saved with this entry's last [`call`]; empty on the
/// first step.
pub fn cont() -> Vec<u8> {
    read(sys::cont)
}

/// How many calls made from this entry have finished.
pub fn calls() -> u32 {
    unsafe { sys::calls() as u32 }
}

/// The result of finished call `index`: `Ok(reply)`, `Err(failure)`, or
/// `None` when there is no such call.
pub fn child(index: u32) -> Option<Result<Vec<u8>, Failure>> {
    let i = index as i32;
    let code = unsafe { sys::child_code(i) };
    if code < 0 {
        return None;
    }
    let n = unsafe { sys::child(i, core::ptr::null_mut(), 0) };
    if n < 0 {
        return None;
    }
    let n = n as usize;
    let mut b = Vec::with_capacity(n);
    if n > 0 {
        let got = unsafe { sys::child(i, b.as_mut_ptr(), n as u32) }.max(0) as usize;
        // SAFETY: the host wrote min(got, n) bytes into the capacity.
        unsafe { b.set_len(got.min(n)) };
    }
    if code == 0 {
        Some(Ok(b))
    } else {
        Some(Err(Failure {
            code: code as u32,
            msg: String::from_utf8_lossy(&b).into_owned(),
        }))
    }
}

/// Set once the step has its outcome, so an outcome after it (a handler that
/// ignored a suspension) is dropped rather than breaking the one-outcome rule.
static DONE: AtomicBool = AtomicBool::new(false);

fn take_outcome() -> bool {
    !DONE.swap(true, Ordering::Relaxed)
}

/// Replies with `out`: the entry is done.
pub fn reply(out: &[u8]) {
    if take_outcome() {
        unsafe { sys::reply(out.as_ptr(), out.len() as u32) }
    }
}

/// Asks `target` for `kind` with `input`, saving `cont` in this entry; the
/// next step of this entry sees the result as `child(calls() - 1)`.
pub fn call(target: &str, kind: &str, input: &[u8], cont: &[u8]) {
    if take_outcome() {
        unsafe {
            sys::call(
                target.as_ptr(),
                target.len() as u32,
                kind.as_ptr(),
                kind.len() as u32,
                input.as_ptr(),
                input.len() as u32,
                cont.as_ptr(),
                cont.len() as u32,
            )
        }
    }
}

/// Fails the entry with `code` (≥ 1) and `msg`.
pub fn fail(code: u32, msg: &str) {
    if take_outcome() {
        unsafe { sys::fail(code, msg.as_ptr(), msg.len() as u32) }
    }
}

/// Fails with 404 `no handler for kind "KIND"`, as the Go SDK does for a
/// kind it has no handler for.
pub fn fail_unknown_kind(kind: &str) {
    // Built by hand: core::fmt would add about 5 KB to every component.
    let mut m = String::with_capacity(24 + kind.len());
    m.push_str("no handler for kind \"");
    m.push_str(kind);
    m.push('"');
    fail(404, &m)
}

/// Writes `msg` to the node's log.
pub fn log(level: Level, msg: &str) {
    unsafe { sys::log(level as u32, msg.as_ptr(), msg.len() as u32) }
}

/// Called by the export macros at the start of every step.
#[doc(hidden)]
pub fn begin_step() {
    DONE.store(false, Ordering::Relaxed);
}

/// FNV-1a 64 over target, 0x00, kind, 0x00, input: the fingerprint of one
/// sequential call (ABI.md §6).
pub fn fingerprint(target: &[u8], kind: &[u8], input: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |b: u8| h = (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3);
    target.iter().for_each(|&b| eat(b));
    eat(0);
    kind.iter().for_each(|&b| eat(b));
    eat(0);
    input.iter().for_each(|&b| eat(b));
    h
}

/// "nondeterministic replay at call N", without core::fmt.
fn replay_message(call: u32) -> String {
    let mut digits = [0u8; 10];
    let (mut n, mut v) = (digits.len(), call);
    loop {
        n -= 1;
        digits[n] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    let mut m = String::from("nondeterministic replay at call ");
    m.push_str(core::str::from_utf8(&digits[n..]).unwrap_or("?"));
    m
}

/// The state of one sequential step: the calls replayed so far and the
/// first call without a result.
pub struct Seq {
    next: u32,
    finished: u32,
    cont: Vec<u8>,
    stopped: bool,
    pending: Option<(String, String, Vec<u8>, u64)>,
}

impl Seq {
    /// Makes the handler's next call. Returns the child's reply, its failure
    /// as [`Error::Failed`], or [`Error::Suspend`] when there is no result
    /// yet (return it: the host runs the handler again once there is).
    pub fn call(&mut self, target: &str, kind: &str, input: &[u8]) -> Result<Vec<u8>, Error> {
        match self.try_call(target, kind, input)? {
            Ok(out) => Ok(out),
            Err(f) => Err(Error::Failed(f)),
        }
    }

    /// Like [`Seq::call`] but hands a child's failure back as a value, for
    /// handlers that want to read it rather than forward it.
    pub fn try_call(
        &mut self,
        target: &str,
        kind: &str,
        input: &[u8],
    ) -> Result<Result<Vec<u8>, Failure>, Error> {
        if self.stopped {
            return Err(Error::Suspend);
        }
        let i = self.next;
        self.next += 1;
        let fp = fingerprint(target.as_bytes(), kind.as_bytes(), input);
        if i < self.finished {
            let at = 4 + 8 * i as usize;
            let mut le = [0u8; 8];
            le.copy_from_slice(&self.cont[at..at + 8]);
            if u64::from_le_bytes(le) != fp {
                fail(code::ABI_VIOLATION, &replay_message(i));
                self.stopped = true;
                return Err(Error::Suspend);
            }
            return match child(i) {
                Some(r) => Ok(r),
                None => Err(Error::Failed(Failure::new(
                    code::INTERNAL,
                    "finished call has no result",
                ))),
            };
        }
        self.stopped = true;
        self.pending = Some((target.into(), kind.into(), input.into(), fp));
        Err(Error::Suspend)
    }
}

/// Runs one step of a sequential handler (what [`export_seq!`] exports).
/// Components that mix styles call it from their explicit step.
pub fn run_seq(handler: fn(&mut Seq) -> Result<Vec<u8>, Error>) {
    let finished = calls();
    let cont = cont();
    let want = if finished > 0 { 4 + 8 * finished as usize } else { 0 };
    if cont.len() != want || (want > 0 && &cont[..4] != b"TSQ1") {
        fail(
            code::ABI_VIOLATION,
            "sequential continuation does not match the finished calls",
        );
        return;
    }
    let mut s = Seq {
        next: 0,
        finished,
        cont,
        stopped: false,
        pending: None,
    };
    let r = handler(&mut s);
    if let Some((target, kind, input, fp)) = s.pending.take() {
        let mut c = Vec::with_capacity(4 + 8 * (finished as usize + 1));
        c.extend_from_slice(b"TSQ1");
        if finished > 0 {
            c.extend_from_slice(&s.cont[4..]);
        }
        c.extend_from_slice(&fp.to_le_bytes());
        call(&target, &kind, &input, &c);
        return;
    }
    if s.next < s.finished && !s.stopped {
        // The handler finished with fewer calls than it made last time.
        fail(code::ABI_VIOLATION, &replay_message(s.next));
        return;
    }
    match r {
        Ok(out) => reply(&out),
        Err(Error::Failed(f)) => fail(if f.code == 0 { code::TRAP } else { f.code }, &f.msg),
        Err(Error::Suspend) => {} // the replay check already failed the step
    }
}

/// Exports `tsubame_abi_version` and `tsubame_step` running `$step: fn()`
/// in the explicit style.
#[macro_export]
macro_rules! export_step {
    ($step:path) => {
        #[no_mangle]
        pub extern "C" fn tsubame_abi_version() -> i32 {
            $crate::ABI_VERSION
        }
        #[no_mangle]
        pub extern "C" fn tsubame_step() {
            $crate::begin_step();
            $step()
        }
    };
}

/// Exports `tsubame_abi_version` and `tsubame_step` running the sequential
/// handler `$h: fn(&mut Seq) -> Result<Vec<u8>, Error>`.
#[macro_export]
macro_rules! export_seq {
    ($h:path) => {
        #[no_mangle]
        pub extern "C" fn tsubame_abi_version() -> i32 {
            $crate::ABI_VERSION
        }
        #[no_mangle]
        pub extern "C" fn tsubame_step() {
            $crate::begin_step();
            $crate::run_seq($h)
        }
    };
}
