#!/usr/bin/env bash
# A short run of every fuzz target (docs/security.md, "Fuzzing"): each for
# FUZZTIME (default 5s) beyond its committed seed corpus, which plain
# `go test` already runs. scripts/test.sh calls this under CI=true. A crash
# leaves its input in the package's testdata/fuzz/ directory: commit it, it
# is the regression test, and this script fails.
#
# Go's fuzzing coordinator can itself end a run with "context deadline
# exceeded" when -fuzztime runs out mid-exchange with a worker: no input
# failed, nothing is written to testdata/fuzz. Such a run is retried once and
# reported; only a failure with a failing input (or a second harness error)
# fails the script.
set -euo pipefail
cd "$(dirname "$0")/.."
t="${FUZZTIME:-5s}"
fuzz() { # pkg target
  local out rc=0
  out=$(go test "$1" -run '^$' -fuzz "^$2\$" -fuzztime "$t" 2>&1) || rc=$?
  printf '%s\n' "$out"
  if [[ $rc -ne 0 ]] && ! grep -q 'Failing input written' <<<"$out" && grep -q 'context deadline exceeded' <<<"$out"; then
    echo "fuzz: $1 $2: the fuzzing harness timed out with no failing input (a Go fuzzing coordinator race); running it again"
    go test "$1" -run '^$' -fuzz "^$2\$" -fuzztime "$t"
    return
  fi
  return $rc
}
while read -r pkg target; do
  echo "== fuzz $pkg $target ($t)"
  fuzz "$pkg" "$target"
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
