#!/usr/bin/env bash
# make test: every test of the project. Needs only Go; with CI=true (or
# TSUBAME_TOOLCHAINS=1) it installs the wasm toolchains first and then
# requires that every committed module rebuilds byte-identically.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ "${CI:-}" == "true" || "${TSUBAME_TOOLCHAINS:-}" == "1" ]]; then
  bash scripts/install-toolchains.sh
  bash scripts/install-redis.sh
  bash scripts/install-chromium.sh
  bash scripts/install-bench-tools.sh # nginx: the evaluation harness's baseline in its smoke test
  export TSUBAME_REQUIRE_TOOLCHAINS=1
  bash scripts/install-test-tools.sh
  export TSUBAME_REQUIRE_CHROMIUM=1
fi
go vet ./...
go build -o bin/tsubame ./cmd/tsubame
export TSUBAME_BIN="$PWD/bin/tsubame"
go test -count=1 -timeout 45m ./...
if [[ "${CI:-}" == "true" || "${TSUBAME_FUZZ:-}" == "1" ]]; then
  bash scripts/fuzz.sh
fi
