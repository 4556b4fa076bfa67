#!/usr/bin/env bash
# A short run of every fuzz target (docs/security.md, "Fuzzing"): each for
# FUZZTIME (default 5s) beyond its committed seed corpus, which plain
# `go test` already runs. scripts/test.sh calls this under CI=true. A crash
# leaves its input in the package's testdata/fuzz/ directory: commit it, it
# is the regression test.
set -euo pipefail
cd "$(dirname "$0")/.."
t="${FUZZTIME:-5s}"
while read -r pkg target; do
  echo "== fuzz $pkg $target ($t)"
  go test "$pkg" -run '^$' -fuzz "^${target}\$" -fuzztime "$t"
done <<'TARGETS'
./lp FuzzDecode
./internal/mesh/cluster FuzzDecodeReport
./internal/mesh/transport FuzzAnswer
./internal/mesh/transport FuzzParseAnswer
./internal/mesh/transport FuzzReadHeader
./node FuzzParseConfig
./gateway FuzzLoadConfig
./gateway FuzzRouteInput
./wasmhost FuzzHostArgs
TARGETS
