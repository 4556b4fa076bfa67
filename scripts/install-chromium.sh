#!/usr/bin/env bash
# Installs Debian's chromium, which the image service's gallery test runs
# headless to render GET /img/ (internal/democluster TestImageService).
# scripts/test.sh runs this under CI=true, where that test then requires it.
set -euo pipefail
if command -v chromium >/dev/null; then
  echo "install-chromium: chromium present ($(chromium --version 2>/dev/null | head -1))"
  exit 0
fi
sudo=()
[[ $(id -u) -eq 0 ]] || sudo=(sudo)
echo "install-chromium: apt-get install chromium"
"${sudo[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core
