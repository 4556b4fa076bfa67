//! greet_rust: the greet component in Rust, the twin of
//! components-src/go/greet: kind "greet" replies "Hello, " + input; an empty
//! input fails with 400 (the gateway answers HTTP 400), any other kind with
//! 404. Built by scripts/components/rust.sh into testdata/greet_rust.wasm.

fn step() {
    let kind = tsubame::kind();
    if kind != "greet" {
        return tsubame::fail_unknown_kind(&kind);
    }
    let input = tsubame::input();
    if input.is_empty() {
        return tsubame::fail(400, "greet: empty name");
    }
    tsubame::reply(&[b"Hello, ".as_slice(), &input].concat());
}

tsubame::export_step!(step);
