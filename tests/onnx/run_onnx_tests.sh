#!/usr/bin/env bash
# The ONNX export test (ctest onnx/export_check_runtime): exports the test models with EXPORTER into DIR,
# then runs the ONNX checker and onnxruntime on them (check_onnx.sh; exit 77 = skipped, a tool is missing).
#   bash tests/onnx/run_onnx_tests.sh EXPORTER DIR
set -euo pipefail
exporter=${1:?usage: run_onnx_tests.sh EXPORTER DIR}
dir=${2:?usage: run_onnx_tests.sh EXPORTER DIR}
rm -rf "$dir"
"$exporter" "$dir"
exec bash "$(dirname "$0")/check_onnx.sh" "$dir" 1e-5
