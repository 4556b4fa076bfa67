//! greet_rust: kind "greet" replies "Hello, " + input, like every greet_<lang>.
//! Built by scripts/components/rust.sh into testdata/greet_rust.wasm.

fn step() {
    if tsubame::kind() != "greet" {
        return tsubame::fail(404, "greet_rust: unknown kind");
    }
    let mut out = b"Hello, ".to_vec();
    out.extend_from_slice(&tsubame::input());
    tsubame::reply(&out);
}

tsubame::export_step!(step);
