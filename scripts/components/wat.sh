#!/usr/bin/env bash
# Builds every components-src/wat/**/*.wat into "${OUT:-testdata}/<name>.wasm"
# with wat2wasm (wabt). wat2wasm writes no names or timestamps unless asked,
# so rebuilds are byte-identical. Two sources with the same base name are an
# error: they would overwrite each other.
set -euo pipefail
cd "$(dirname "$0")/../.."
out="${OUT:-testdata}"
mkdir -p "$out"
# Exit 77 ("toolchain missing") so the rebuild check can tell it from a failure.
command -v wat2wasm >/dev/null || { echo "wat.sh: wat2wasm not found (apt-get install wabt)" >&2; exit 77; }
declare -A seen=()
while IFS= read -r src; do
  name="$(basename "$src" .wat)"
  if [[ -n "${seen[$name]:-}" ]]; then
    echo "wat.sh: $src and ${seen[$name]} both build $name.wasm" >&2
    exit 1
  fi
  seen[$name]="$src"
  wat2wasm "$src" -o "$out/$name.wasm"
done < <(find components-src/wat -name '*.wat' | LC_ALL=C sort)
echo "wat.sh: built ${#seen[@]} modules into $out"
