#!/usr/bin/env bash
# Checks exported ONNX models: the ONNX checker (python3 onnx, full_check=True) on each, and onnxruntime
# (onnxruntime-node, through run_model.js) on its input, compared with tapegrad's output (max relative
# error <= RTOL, default 1e-5). DIR/manifest.txt lists `<name> <input dims> <output dims>`, with
# DIR/<name>.onnx, <name>.input.bin and <name>.expected.bin (float32, little-endian). A manifest file may be
# named instead of DIR (mnist_mlp --export-onnx a.onnx --export-onnx-check N writes a.manifest.txt).
#   bash tests/onnx/check_onnx.sh DIR|MANIFEST [RTOL]
# Exits 0 when every check ran and passed, 1 when one failed, 77 (ctest's skip) when python3-onnx, node or
# onnxruntime-node is missing and nothing failed -- unless TAPEGRAD_REQUIRE_ONNX=1 (CI), which makes a
# missing tool a failure. onnxruntime-node is looked for in ${TAPEGRAD_ONNXRUNTIME_DIR:-~/.cache/tapegrad/onnxruntime}
# (install it with cmake/setup_onnxruntime.sh); the python with onnx is $TAPEGRAD_PYTHON, python3 or /usr/bin/python3.
set -uo pipefail
arg=${1:?usage: check_onnx.sh DIR|MANIFEST [RTOL]}
rtol=${2:-1e-5}
here=$(cd "$(dirname "$0")" && pwd)
if [[ -f "$arg" ]]; then manifest=$arg dir=$(dirname "$arg"); else manifest=$arg/manifest.txt dir=$arg; fi
[[ -f "$manifest" ]] || { echo "check_onnx: $manifest not found" >&2; exit 1; }

missing=() failed=0
python=""
for p in ${TAPEGRAD_PYTHON:-} python3 /usr/bin/python3; do
  if command -v "$p" >/dev/null 2>&1 && "$p" -c "import onnx" >/dev/null 2>&1; then python=$p; break; fi
done
models=()
while read -r name _ _; do models+=("$dir/$name.onnx"); done < "$manifest"
if [[ -n "$python" ]]; then
  "$python" "$here/check_models.py" "${models[@]}" || failed=1
else
  missing+=("python3 with the onnx package (apt-get install python3-onnx)")
fi

ort_dir=${TAPEGRAD_ONNXRUNTIME_DIR:-$HOME/.cache/tapegrad/onnxruntime}
if ! command -v node >/dev/null 2>&1; then
  missing+=("node (apt-get install nodejs)")
elif ! NODE_PATH="$ort_dir/node_modules" node -e "require('onnxruntime-node')" >/dev/null 2>&1; then
  missing+=("onnxruntime-node in $ort_dir (bash cmake/setup_onnxruntime.sh)")
else
  while read -r name in_dims _; do
    # onnxruntime logs warnings on stderr in colour; keep only our line and real errors.
    NODE_PATH="$ort_dir/node_modules" node "$here/run_model.js" "$dir/$name.onnx" "$dir/$name.input.bin" "$in_dims" \
      --expect "$dir/$name.expected.bin" --rtol "$rtol" 2> "$dir/$name.ort.log" || { failed=1; cat "$dir/$name.ort.log"; }
  done < "$manifest"
fi

if [[ $failed != 0 ]]; then echo "check_onnx: FAILED" >&2; exit 1; fi
if [[ ${#missing[@]} -gt 0 ]]; then
  for m in "${missing[@]}"; do echo "check_onnx: SKIP: missing $m"; done
  if [[ "${TAPEGRAD_REQUIRE_ONNX:-0}" == 1 ]]; then echo "check_onnx: TAPEGRAD_REQUIRE_ONNX=1: a missing tool fails" >&2; exit 1; fi
  exit 77
fi
echo "check_onnx: all ${#models[@]} models pass the checker and agree with onnxruntime (rtol $rtol)"
