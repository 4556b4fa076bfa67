#!/usr/bin/env bash
# Installs Debian's redis-server (7.x), which the KV tests start on free
# loopback ports (internal/testutil.StartRedis). scripts/test.sh runs this
# under CI=true, where a KV test without redis-server fails instead of
# skipping. The package's own service is not needed: tests start their own.
set -euo pipefail
if command -v redis-server >/dev/null; then
  echo "install-redis: redis-server present ($(redis-server --version | cut -d' ' -f3))"
  exit 0
fi
sudo=()
[[ $(id -u) -eq 0 ]] || sudo=(sudo)
echo "install-redis: apt-get install redis-server"
"${sudo[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends redis-server
