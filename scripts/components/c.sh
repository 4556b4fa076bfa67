#!/usr/bin/env bash
# Builds every components-src/c/NAME/ (all its .c files, with the one-header
# SDK abi/c/tsubame.h) into ${OUT:-testdata}/NAME.wasm.
#
# No libc: -nostdlib -ffreestanding, bulk memory for memcpy/memset. Compile
# and link are separate steps because clang runs wasm-opt (without our feature
# flags) when it links with -O and finds wasm-opt on PATH. No debug info and
# prefix maps make the output independent of where the tree is: rebuilds are
# byte-identical.
set -euo pipefail
cd "$(dirname "$0")/../.."
out="${OUT:-testdata}"
mkdir -p "$out"
cc="${CLANG:-clang-14}"
if ! command -v "$cc" >/dev/null; then
  echo "c.sh: $cc not found (run: make toolchains)" >&2
  exit 77
fi
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
cflags=(--target=wasm32 -Os -nostdlib -ffreestanding -mbulk-memory -Wall -Wextra -Werror
  -ffile-prefix-map="$PWD"=. -I abi/c)
for dir in components-src/c/*/; do
  name="$(basename "$dir")"
  objs=()
  for src in "$dir"*.c; do
    obj="$tmp/$name-$(basename "$src" .c).o"
    "$cc" "${cflags[@]}" -c -o "$obj" "$src"
    objs+=("$obj")
  done
  "$cc" --target=wasm32 -nostdlib -Wl,--no-entry -Wl,--strip-all -Wl,-z,stack-size=65536 \
    -o "$out/$name.wasm" "${objs[@]}"
  chmod 644 "$out/$name.wasm"
  echo "c: $out/$name.wasm"
done
