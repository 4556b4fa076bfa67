#!/usr/bin/env bash
# Builds every components-src/as/NAME/ (its one .ts entry file) into
# ${OUT:-testdata}/NAME.wasm with the AssemblyScript compiler pinned in
# abi/as/package.json (installed by scripts/install-toolchains.sh).
#
# abi/as/build.mjs runs the compiler: the SDK abi/as/assembly/tsubame.ts is
# passed as a library (--lib), so a component imports it as "tsubame"; its
# abort function replaces the env.abort import AssemblyScript would otherwise
# add; _initialize runs the module's top-level code once per instance.
set -euo pipefail
cd "$(dirname "$0")/../.."
out="${OUT:-testdata}"
mkdir -p "$out"
asc="abi/as/node_modules/.bin/asc"
if ! [[ -x "$asc" ]] || ! command -v node >/dev/null; then
  echo "as.sh: $asc not found (run: make toolchains)" >&2
  exit 77
fi
entries=()
for dir in components-src/as/*/; do
  srcs=("$dir"*.ts)
  if [[ ${#srcs[@]} -ne 1 ]]; then
    echo "as.sh: $dir must hold exactly one .ts file (got ${#srcs[@]})" >&2
    exit 1
  fi
  entries+=("${srcs[0]}")
done
# One Node process for all modules: loading the compiler and binaryen costs
# seconds, compiling a component a fraction of that. Run from the repository
# root: asc's output depends on the --lib path as written, so build.mjs
# passes it relative to here.
node abi/as/build.mjs "$out" "${entries[@]}"
