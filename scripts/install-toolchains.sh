#!/usr/bin/env bash
# make toolchains: installs what scripts/components/*.sh need to rebuild the
# committed modules, skipping whatever is already there. Debian packages come
# from apt (one `apt-get update`, only when a package is missing); the
# AssemblyScript compiler from npm, locally into abi/as/node_modules, at the
# exact version pinned by abi/as/package.json and package-lock.json.
# Idempotent; meant for root on a fresh Debian machine (CI) as much as for a
# developer's.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages: wabt (wat2wasm), clang-14 + lld-14 (C), wasi-libc (C with a
# libc, optional for our components, with the wasm32 compiler-rt it links
# against), rustc + its wasm32 std (Rust), binaryen
# (wasm-opt), nodejs + npm (AssemblyScript).
pkgs=(wabt clang-14 lld-14 wasi-libc libclang-rt-14-dev-wasm32 rustc libstd-rust-dev-wasm32 binaryen)
command -v node >/dev/null || pkgs+=(nodejs)
command -v npm >/dev/null || pkgs+=(npm)
missing=()
for p in "${pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done
if [[ ${#missing[@]} -gt 0 ]]; then
  sudo=()
  [[ $(id -u) -eq 0 ]] || sudo=(sudo)
  echo "install-toolchains: apt-get install ${missing[*]}"
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "install-toolchains: Debian packages present"
fi

# AssemblyScript, pinned. `npm ci` installs exactly the lockfile; skip it
# when the pinned version is already there.
want="$(node -e 'process.stdout.write(require("./abi/as/package.json").devDependencies.assemblyscript)')"
have="$(node -e 'try{process.stdout.write(require("./abi/as/node_modules/assemblyscript/package.json").version)}catch(e){}' 2>/dev/null || true)"
if [[ "$have" != "$want" ]]; then
  echo "install-toolchains: npm ci (assemblyscript $want) in abi/as"
  (cd abi/as && npm ci --no-audit --no-fund --loglevel=error)
else
  echo "install-toolchains: assemblyscript $want present"
fi
