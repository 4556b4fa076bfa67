#!/usr/bin/env bash
# Installs what the end-to-end tests drive besides Go: headless Chromium for
# the dashboard test (e2e/dashboard_test.go). Debian packages only; run by
# scripts/test.sh under CI=true, safe to run again.
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then
  exit 0
fi
SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO=sudo; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
chromium --version
