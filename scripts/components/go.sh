#!/usr/bin/env bash
# Builds every Go component, components-src/go/NAME/, into ${OUT:-testdata}/NAME.wasm
# (OUT relative to the repository root). The flags are fixed so that a rebuild with
# the same Go version is byte-identical (internal/buildcheck checks it):
#   -buildmode=c-shared  a WASI reactor: _initialize, then the SDK's exports
#   -trimpath            no local paths in the module
#   -buildvcs=false      no VCS stamp (it changes with every commit)
# Names are kept (no -ldflags="-s -w"): they make wazero's trap backtraces readable
# and stripping saves only 2% of the size.
# Exit status 77 means the toolchain is missing (buildcheck then skips this language).
set -euo pipefail
cd "$(dirname "$0")/../.."
if ! command -v go >/dev/null; then
  echo "go.sh: the go command is not installed" >&2
  exit 77
fi
out="${OUT:-testdata}"
mkdir -p "$out"
for dir in components-src/go/*/; do
  name="$(basename "$dir")"
  env -u GOFLAGS CGO_ENABLED=0 GOOS=wasip1 GOARCH=wasm GOWASM= \
    go build -buildmode=c-shared -trimpath -buildvcs=false -o "$out/$name.wasm" "./$dir"
  echo "$out/$name.wasm"
done
