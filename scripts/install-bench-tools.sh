#!/usr/bin/env bash
# Installs what `tsubame bench gateway --vs nginx` compares against and what a
# reader may load it with: nginx (Debian nginx-light: the reverse proxy and
# upstream keepalive, nothing else) and wrk. Skips whatever is present; one
# `apt-get update`, only when a package is missing. The system nginx service
# is not started or enabled by the bench: it runs its own nginx as a child
# process with a config in a temporary directory.
set -euo pipefail
pkgs=(nginx-light wrk)
missing=()
for p in "${pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done
if [[ ${#missing[@]} -eq 0 ]]; then
  echo "install-bench-tools: nginx-light and wrk present"
  exit 0
fi
sudo=()
[[ $(id -u) -eq 0 ]] || sudo=(sudo)
echo "install-bench-tools: apt-get install ${missing[*]}"
"${sudo[@]}" apt-get update -qq
# policy-rc.d 101 keeps the package's post-install from starting the system
# nginx on port 80 (where a container has no init, it fails noisily anyway).
if [[ ! -e /usr/sbin/policy-rc.d ]]; then
  printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee /usr/sbin/policy-rc.d >/dev/null
  "${sudo[@]}" chmod +x /usr/sbin/policy-rc.d
  trap '"${sudo[@]}" rm -f /usr/sbin/policy-rc.d' EXIT
fi
DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
