#!/usr/bin/env bash
# Builds every components-src/as/NAME/ (its one .ts entry file) into
# ${OUT:-testdata}/NAME.wasm with the AssemblyScript compiler pinned in
# abi/as/package.json (installed by scripts/install-toolchains.sh).
#
# The SDK abi/as/assembly/tsubame.ts is passed as a library (--lib), so a
# component imports it as "tsubame"; its abort function replaces the env.abort
# import AssemblyScript would otherwise add. _initialize runs the module's
# top-level code once per instance.
set -euo pipefail
cd "$(dirname "$0")/../.."
out="${OUT:-testdata}"
mkdir -p "$out"
asc="abi/as/node_modules/.bin/asc"
if ! [[ -x "$asc" ]] || ! command -v node >/dev/null; then
  echo "as.sh: $asc not found (run: make toolchains)" >&2
  exit 77
fi
for dir in components-src/as/*/; do
  name="$(basename "$dir")"
  srcs=("$dir"*.ts)
  if [[ ${#srcs[@]} -ne 1 ]]; then
    echo "as.sh: $dir must hold exactly one .ts file (got ${#srcs[@]})" >&2
    exit 77
  fi
  "$asc" "${srcs[0]}" -O3 --runtime incremental --exportStart _initialize \
    --lib abi/as/assembly --use abort=~lib/tsubame/abort -o "$out/$name.wasm"
  echo "as: $out/$name.wasm"
done
