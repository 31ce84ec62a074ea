#!/usr/bin/env bash
# Builds tapegrad and runs the whole test suite. Idempotent: installs missing Debian packages, reuses the
# build folder. Usage:
#   bash cmake/run_tests.sh                      # Release build in build/, every test
#   bash cmake/run_tests.sh --config Debug --build-dir build-debug
#   bash cmake/run_tests.sh --cxx clang++ --build-dir build-clang
#   bash cmake/run_tests.sh --sanitize --build-dir build-asan     # ASan + UBSan
# Options: --no-extras (tests only: skip examples and benchmarks), --no-tests (examples and benchmarks only,
# nothing run), --werror (warnings are errors), --asserts (keep assert() and Eigen's own checks in an optimised
# build: the configuration's flags become "-O2 -g", without -DNDEBUG).
set -euo pipefail
cd "$(dirname "$0")/.."

config=Release build_dir=build cxx="${CXX:-g++}" sanitize=0 extras=ON tests=ON werror=OFF asserts=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --config) config="$2"; shift 2 ;;
    --build-dir) build_dir="$2"; shift 2 ;;
    --cxx) cxx="$2"; shift 2 ;;
    --sanitize) sanitize=1; shift ;;
    --no-extras) extras=OFF; shift ;;
    --no-tests) tests=OFF; shift ;;
    --asserts) asserts=1; shift ;;
    --werror) werror=ON; shift ;;
    *) echo "run_tests: unknown option $1" >&2; exit 2 ;;
  esac
done

bash cmake/setup_deps.sh
# onnxruntime-node (npm), the runtime the ONNX export tests compare against; cached after the first run. Without
# it (no registry reachable) those tests skip and say so, unless TAPEGRAD_REQUIRE_ONNX=1 (CI) makes them fail.
if [[ $tests == ON ]] && ! bash cmake/setup_onnxruntime.sh >/dev/null; then
  echo "run_tests: onnxruntime-node could not be installed: the ONNX runtime comparisons will be skipped" >&2
fi

flags=""
if [[ $sanitize == 1 ]]; then
  flags="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer"
  export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1" UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
fi

config_flags=()
if [[ $asserts == 1 ]]; then
  config_flags=(-DCMAKE_CXX_FLAGS_"${config^^}"="-O2 -g")
fi
if [[ $tests == OFF && $extras == OFF ]]; then
  echo "run_tests: --no-tests with --no-extras leaves nothing to build" >&2; exit 2
fi

echo "run_tests: configuring $build_dir ($config, $cxx${flags:+, sanitizers}$([[ $asserts == 1 ]] && echo ', asserts on'))"
cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE="$config" -DCMAKE_CXX_COMPILER="$cxx" \
  -DCMAKE_CXX_FLAGS="$flags" "${config_flags[@]}" -DTAPEGRAD_BUILD_TESTS="$tests" -DTAPEGRAD_BUILD_EXAMPLES="$extras" \
  -DTAPEGRAD_BUILD_BENCH="$extras" -DTAPEGRAD_WERROR="$werror" >/dev/null
echo "run_tests: building"
cmake --build "$build_dir" -j "$(nproc)"
if [[ $tests == OFF ]]; then
  echo "run_tests: built examples and benchmarks only (--no-tests)"; exit 0
fi
echo "run_tests: running the tests"
ctest --test-dir "$build_dir" --output-on-failure -j "$(nproc)"
