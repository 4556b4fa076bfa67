//! conformance_rust: the conformance kinds (conformance/kinds.md) in Rust,
//! with both continuation styles. conformance/ runs one table of behaviours
//! against this module and its twins in every other language.
//! Built by scripts/components/rust.sh into testdata/conformance_rust.wasm.

use tsubame::{Error, Seq};

/// Splits `b` at its first space: (before, after).
fn field(b: &[u8]) -> (&[u8], &[u8]) {
    match b.iter().position(|&c| c == b' ') {
        Some(i) => (&b[..i], &b[i + 1..]),
        None => (b, &b[b.len()..]),
    }
}

fn text(b: &[u8]) -> &str {
    core::str::from_utf8(b).unwrap_or("")
}

fn num(b: &[u8]) -> u32 {
    b.iter()
        .take_while(|c| c.is_ascii_digit())
        .fold(0u32, |v, &c| v.wrapping_mul(10).wrapping_add((c - b'0') as u32))
}

fn pattern(i: u32) -> u8 {
    (i.wrapping_mul(7).wrapping_add(3)) as u8
}

/// target, kind and the rest of a "TARGET KIND REST" input.
fn call_args(input: &[u8]) -> (String, String, Vec<u8>) {
    let (t, rest) = field(input);
    let (k, rest) = field(rest);
    (text(t).into(), text(k).into(), rest.to_vec())
}

/// Replies with call i's reply or fails with its code and message.
fn forward(i: u32) {
    match tsubame::child(i) {
        Some(Ok(out)) => tsubame::reply(&out),
        Some(Err(f)) => tsubame::fail(f.code, &f.msg),
        None => tsubame::fail(100, "conformance: no result"),
    }
}

fn do_call(input: &[u8]) {
    if tsubame::calls() == 0 {
        let (t, k, rest) = call_args(input);
        return tsubame::call(&t, &k, &rest, b"call:1");
    }
    if tsubame::cont() != b"call:1" {
        return tsubame::fail(100, "conformance: lost continuation");
    }
    forward(tsubame::calls() - 1)
}

fn do_catch(input: &[u8]) {
    if tsubame::calls() == 0 {
        let (t, k, rest) = call_args(input);
        return tsubame::call(&t, &k, &rest, b"");
    }
    let out = match tsubame::child(0) {
        Some(Ok(out)) => [b"ok: ".as_slice(), &out].concat(),
        Some(Err(f)) => format!("failed {}: {}", f.code, f.msg).into_bytes(),
        None => return tsubame::fail(100, "conformance: no result"),
    };
    tsubame::reply(&out)
}

fn do_cont(input: &[u8]) {
    let (t, n) = field(input);
    let n = num(n);
    if tsubame::calls() == 0 {
        let c: Vec<u8> = (0..n).map(pattern).collect();
        return tsubame::call(text(t), "echo", b"x", &c);
    }
    let c = tsubame::cont();
    if c.len() != n as usize || c.iter().enumerate().any(|(i, &b)| b != pattern(i as u32)) {
        return tsubame::fail(100, "conformance: continuation changed");
    }
    tsubame::reply(format!("cont ok {}", n).as_bytes())
}

fn seq(s: &mut Seq) -> Result<Vec<u8>, Error> {
    let (t, k, rest) = call_args(&tsubame::input());
    let a = s.call(&t, &k, &rest)?;
    let b = s.call(&t, &k, &a)?;
    Ok([a.as_slice(), b"|", &b].concat())
}

fn looping(s: &mut Seq) -> Result<Vec<u8>, Error> {
    let (t, k, rest) = call_args(&tsubame::input());
    let mut out = Vec::new();
    for i in 0..num(&rest) {
        let r = s.call(&t, &k, i.to_string().as_bytes())?;
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(&r);
    }
    Ok(out)
}

/// Breaks the replay rule on purpose: the call's input depends on calls().
fn nondet(s: &mut Seq) -> Result<Vec<u8>, Error> {
    let (t, k, _) = call_args(&tsubame::input());
    s.call(&t, &k, tsubame::calls().to_string().as_bytes())
}

fn step() {
    let kind = tsubame::kind();
    let input = tsubame::input();
    match kind.as_str() {
        "echo" => tsubame::reply(&input),
        "greet" => tsubame::reply(&[b"Hello, ".as_slice(), &input].concat()),
        "fail" => {
            let (code, msg) = field(&input);
            tsubame::fail(num(code), &String::from_utf8_lossy(msg))
        }
        "call" => do_call(&input),
        "catch" => do_catch(&input),
        "cont" => do_cont(&input),
        "seq" => tsubame::run_seq(seq),
        "loop" => tsubame::run_seq(looping),
        "nondet" => tsubame::run_seq(nondet),
        "log" => {
            let (level, msg) = field(&input);
            let level = match num(level) {
                0 => tsubame::Level::Debug,
                1 => tsubame::Level::Info,
                2 => tsubame::Level::Warn,
                _ => tsubame::Level::Error,
            };
            tsubame::log(level, &String::from_utf8_lossy(msg));
            tsubame::reply(b"logged")
        }
        "big" => {
            let out: Vec<u8> = (0..num(&input)).map(|i| b'a' + (i % 26) as u8).collect();
            tsubame::reply(&out)
        }
        "size" => {
            let sum = input.iter().fold(0u32, |s, &b| s.wrapping_add(b as u32));
            tsubame::reply(format!("{} {}", input.len(), sum).as_bytes())
        }
        "trap" => panic!("conformance: trap requested"),
        other => tsubame::fail_unknown_kind(other),
    }
}

tsubame::export_step!(step);
