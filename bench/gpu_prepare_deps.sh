#!/usr/bin/env bash
# Fills .deps/ (git-ignored) with what bench/gpu_check.sh needs on a GPU machine that has no network and may
# lack our header-only dependencies: run it HERE, on a machine set up by cmake/setup_deps.sh with MNIST
# fetched (cmake/fetch_mnist.sh), then hand `.deps` to the GPU session as a carried path.
#
#   bash bench/gpu_prepare_deps.sh [--mnist DIR]
#
# .deps/ then holds (the layout of an install prefix, so CMAKE_PREFIX_PATH=.deps finds the packages):
#   include/{doctest,CLI,nlohmann}/, include/{zlib.h,zconf.h}   headers
#   share/cmake/{doctest,CLI11,nlohmann_json}/                  their CMake package files, made relocatable
#   eigen/{include/eigen3,share/eigen3/cmake}/                  Eigen 3.4, a fallback prefix used only where
#                                                               the GPU machine has no Eigen3Config.cmake
#   mnist/*-ubyte.gz                                            the four MNIST IDX files, gzip -9
# zlib's library itself is not carried: every machine with Python has libz.so.1, and gpu_check.sh points
# CMake at it when the unversioned libz.so of the -dev package is missing. Google Benchmark is not carried
# either: gpu_check.sh builds none of its programs and gives CMake a stub package where it is missing.
# Ends with the size of .deps, which must stay well under the 64 MiB a session may carry.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
deps=$root/.deps
mnist_src=""
while [[ $# -gt 0 ]]; do
  case $1 in
    --mnist) mnist_src=$2; shift 2 ;;
    -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
    *) echo "gpu_prepare_deps: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done

die() { echo "gpu_prepare_deps: $*" >&2; exit 1; }

# The folder holding a package's <Name>Config.cmake among the usual install locations.
config_dir() {
  local name=$1 d
  for d in /usr/lib/cmake/"$name" /usr/lib/*/cmake/"$name" /usr/share/cmake/"$name" /usr/local/lib/cmake/"$name" \
           /usr/local/share/cmake/"$name" /usr/share/"${name,,}"/cmake; do
    if [[ -f $d/${name}Config.cmake || -f $d/$(echo "$name" | tr '[:upper:]' '[:lower:]')-config.cmake ]]; then
      echo "$d"
      return 0
    fi
  done
  return 1
}

rm -rf "$deps"/include "$deps"/share "$deps"/eigen "$deps"/mnist
mkdir -p "$deps"/include "$deps"/share/cmake "$deps"/eigen/include "$deps"/eigen/share/eigen3 "$deps"/mnist

# ---- headers ---------------------------------------------------------------------------------------------
for h in doctest CLI nlohmann zlib.h zconf.h; do
  [[ -e /usr/include/$h ]] || die "/usr/include/$h is missing: run cmake/setup_deps.sh first"
  cp -r /usr/include/"$h" "$deps"/include/
done

# ---- CMake package files, relocated: the prefix is computed from the file's own place ---------------------
# share/cmake/<name>/ sits three levels below the prefix, as lib/cmake/<name>/ does where Debian puts doctest.
for pkg in doctest CLI11 nlohmann_json; do
  src=$(config_dir "$pkg") || die "no ${pkg}Config.cmake found (install its -dev package: cmake/setup_deps.sh)"
  cp -r "$src" "$deps"/share/cmake/"$pkg"
done
# Debian's doctestTargets.cmake hard-codes its prefix; make it relative like the others.
# shellcheck disable=SC2016  # the ${...} is CMake's, written literally
sed -i 's|^set(_IMPORT_PREFIX "/usr")$|get_filename_component(_IMPORT_PREFIX "${CMAKE_CURRENT_LIST_DIR}/../../.." ABSOLUTE)|' \
  "$deps"/share/cmake/doctest/doctestTargets.cmake
if grep -rn '"/usr' "$deps"/share/cmake; then
  die "an absolute /usr path is left in the carried CMake files above: they would not relocate"
fi

# ---- Eigen (fallback prefix) -----------------------------------------------------------------------------
[[ -f /usr/include/eigen3/Eigen/Core ]] || die "/usr/include/eigen3 is missing (libeigen3-dev)"
eigen_cfg=$(config_dir Eigen3) || die "no Eigen3Config.cmake found (libeigen3-dev)"
cp -r /usr/include/eigen3 "$deps"/eigen/include/
cp -r "$eigen_cfg" "$deps"/eigen/share/eigen3/cmake
if grep -rn '"/usr' "$deps"/eigen/share; then die "an absolute /usr path is left in Eigen's CMake files"; fi

# ---- MNIST -----------------------------------------------------------------------------------------------
if [[ -z $mnist_src ]]; then
  for d in "${TAPEGRAD_MNIST_DIR:-}" "${XDG_CACHE_HOME:-$HOME/.cache}/tapegrad/mnist" /root/.cache/tapegrad/mnist; do
    [[ -n $d && ( -f $d/train-images-idx3-ubyte || -f $d/train-images-idx3-ubyte.gz ) ]] && { mnist_src=$d; break; }
  done
fi
[[ -n $mnist_src ]] || die "MNIST not found (run cmake/fetch_mnist.sh, or pass --mnist DIR)"
for f in train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte; do
  if [[ -f $mnist_src/$f.gz ]]; then
    cp "$mnist_src/$f.gz" "$deps/mnist/$f.gz"
  elif [[ -f $mnist_src/$f ]]; then
    gzip -9 -c "$mnist_src/$f" > "$deps/mnist/$f.gz"
  else
    die "$mnist_src/$f(.gz) is missing"
  fi
  gzip -t "$deps/mnist/$f.gz" || die "$deps/mnist/$f.gz is corrupt"
done

# ---- check: CMake finds every carried package in .deps, not in /usr ---------------------------------------
if command -v cmake >/dev/null 2>&1; then
  probe=$(mktemp -d)
  trap 'rm -rf "$probe"' EXIT
  cat > "$probe"/CMakeLists.txt <<'EOF'
cmake_minimum_required(VERSION 3.20)
project(deps_probe LANGUAGES NONE)
find_package(doctest REQUIRED)
find_package(CLI11 REQUIRED)
find_package(nlohmann_json 3.10 REQUIRED)
find_package(Eigen3 3.4 REQUIRED NO_MODULE)
foreach(t doctest::doctest CLI11::CLI11 nlohmann_json::nlohmann_json Eigen3::Eigen)
  get_target_property(inc ${t} INTERFACE_INCLUDE_DIRECTORIES)
  foreach(d IN LISTS inc)
    cmake_path(IS_PREFIX DEPS "${d}" NORMALIZE under)
    if(NOT under)
      message(FATAL_ERROR "${t} includes ${d}, outside ${DEPS}")
    endif()
    if(NOT EXISTS "${d}")
      message(FATAL_ERROR "${t} includes ${d}, which does not exist")
    endif()
  endforeach()
  message(STATUS "${t}: ${inc}")
endforeach()
EOF
  cmake -S "$probe" -B "$probe"/build -DDEPS="$deps" -DCMAKE_PREFIX_PATH="$deps;$deps/eigen" >"$probe"/log 2>&1 ||
    { cat "$probe"/log >&2; die "CMake does not find the carried packages in $deps (log above)"; }
  grep -- '-- .*::' "$probe"/log
fi

size_kib=$(du -sk "$deps" | cut -f1)
du -sh "$deps"/*
(( size_kib < 48 * 1024 )) || die "$deps is $((size_kib / 1024)) MiB: too big to carry (limit 64 MiB with the tree)"
echo "gpu_prepare_deps: $deps ready ($((size_kib / 1024)) MiB); carry it to the GPU session as '.deps'"
