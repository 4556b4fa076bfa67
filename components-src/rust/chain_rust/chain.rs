//! chain_rust: the second link of the mixed-language chain
//! chain_go -> chain_rust -> chain_c -> chain_as. Kind "run" asks chain_c to
//! "run" on its input and replies "rust(" + that + ")"; `?` forwards a
//! failure of chain_c with its code and message. Sequential style.
//! Built by scripts/components/rust.sh into testdata/chain_rust.wasm.

use tsubame::{Error, Failure, Seq};

fn run(s: &mut Seq) -> Result<Vec<u8>, Error> {
    if tsubame::kind() != "run" {
        return Err(Failure::new(404, "chain_rust: no handler for this kind").into());
    }
    let out = s.call("chain_c", "run", &tsubame::input())?;
    Ok([b"rust(".as_slice(), &out, b")"].concat())
}

tsubame::export_seq!(run);
