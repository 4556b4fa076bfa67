#!/usr/bin/env bash
# make components: rebuild every committed module in testdata/ from components-src/.
# Each language has its own script in scripts/components/LANG.sh; give language
# names as arguments to build only those (e.g. `scripts/build-components.sh go wat`).
set -euo pipefail
cd "$(dirname "$0")/.."
langs=("$@")
if [[ ${#langs[@]} -eq 0 ]]; then
  langs=()
  for s in scripts/components/*.sh; do langs+=("$(basename "$s" .sh)"); done
fi
for l in "${langs[@]}"; do
  echo "== components: $l"
  bash "scripts/components/$l.sh"
done
