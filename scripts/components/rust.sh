#!/usr/bin/env bash
# Builds every components-src/rust/NAME/ (its one .rs file, a cdylib) into
# ${OUT:-testdata}/NAME.wasm with Debian's rustc (not a rustup one: the
# committed modules must rebuild byte-identically, so the compiler is pinned
# by the distribution) and the no-dependency SDK abi/rust as an --extern rlib.
#
# No cargo, no registry. Determinism: no debug info, symbols stripped, paths
# remapped, one codegen unit with fat LTO.
set -euo pipefail
cd "$(dirname "$0")/../.."
out="${OUT:-testdata}"
mkdir -p "$out"
rustc="${RUSTC:-/usr/bin/rustc}"
if ! [[ -x "$rustc" ]] || ! [[ -d "$("$rustc" --print sysroot)/lib/rustlib/wasm32-unknown-unknown" ]]; then
  echo "rust.sh: $rustc with the wasm32-unknown-unknown std not found (run: make toolchains)" >&2
  exit 77
fi
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
common=(--edition 2021 --target wasm32-unknown-unknown -C opt-level=s -C panic=abort
  -C debuginfo=0 -C codegen-units=1 --remap-path-prefix "$PWD=." --remap-path-prefix "$tmp=.")
"$rustc" "${common[@]}" --crate-type rlib --crate-name tsubame -o "$tmp/libtsubame.rlib" abi/rust/src/lib.rs
for dir in components-src/rust/*/; do
  name="$(basename "$dir")"
  srcs=("$dir"*.rs)
  if [[ ${#srcs[@]} -ne 1 ]]; then
    echo "rust.sh: $dir must hold exactly one .rs file (got ${#srcs[@]})" >&2
    exit 1
  fi
  "$rustc" "${common[@]}" --crate-type cdylib --crate-name "$name" -C lto=fat -C strip=symbols \
    --extern tsubame="$tmp/libtsubame.rlib" -o "$out/$name.wasm" "${srcs[0]}"
  chmod 644 "$out/$name.wasm"
  echo "rust: $out/$name.wasm"
done
