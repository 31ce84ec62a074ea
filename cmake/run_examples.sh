#!/usr/bin/env bash
# Runs every example as a smoke test; each checks its own result and exits non-zero on failure.
#   bash cmake/run_examples.sh [BUILD_DIR]      (default: build)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
ex="$build/examples"

run() {
  local name=$1; shift
  echo "run_examples: $name $*"
  local t0
  t0=$(date +%s%N)
  "$ex/$name" "$@" > "$out/$name.log" 2>&1 || { cat "$out/$name.log"; echo "run_examples: $name FAILED" >&2; exit 1; }
  grep '^result:' "$out/$name.log" | tail -n 1 || tail -n 3 "$out/$name.log"
  echo "run_examples: $name took $(( ($(date +%s%N) - t0) / 1000000 )) ms"
}

run logic_gates
run xor
[[ -x "$ex/regression" ]] && run regression --svg "$out/fit.svg"
[[ -x "$ex/activations" ]] && run activations --csv "$out/act.csv" --svg "$out/act.svg"

# The sequence lessons, short: seq2seq 2 epochs on 6,000 dates (about 5 s of CPU, 0.94 exact match);
# char_lm 150 steps of a small LSTM and RNN (the two gradient curves into one plot).
[[ -x "$ex/seq2seq" ]] && run seq2seq --train 6000 --epochs 2 --test 500 --beam 3 --min-exact-match 0.85 \
  --svg "$out/attention.svg"
if [[ -x "$ex/char_lm" && -d /usr/share/games/fortunes ]]; then
  run char_lm --cell rnn --hidden 64 --max-steps 150 --sample-length 80 --max-val-bpc 3.9 --grad-csv "$out/grads.csv"
  run char_lm --cell lstm --hidden 64 --max-steps 150 --sample-length 80 --max-val-bpc 4.0 --grad-csv "$out/grads.csv" \
    --grad-svg "$out/grads.svg"
  grep -q '<path' "$out/grads.svg" || { echo "run_examples: char_lm wrote no gradient plot" >&2; exit 1; }
elif [[ -x "$ex/char_lm" ]]; then
  echo "run_examples: /usr/share/games/fortunes not found (apt-get install fortunes); skipping char_lm"
fi

mnist_dir=$(bash cmake/fetch_mnist.sh 2>/dev/null | tail -n 1 || true)
if [[ -n "$mnist_dir" && -f "$mnist_dir/t10k-labels-idx1-ubyte" ]]; then
  run mnist_mlp --data "$mnist_dir" --epochs 1 --save "$out/mlp.safetensors" \
    --export-onnx "$out/mlp.onnx" --export-onnx-check 256
  run mnist_predict --model "$out/mlp.safetensors" --data "$mnist_dir" --index 0 --index 1
  if [[ -x "$ex/mnist_cnn" ]]; then
    run mnist_cnn --data "$mnist_dir" --epochs 1 --export-onnx "$out/cnn.onnx" --export-onnx-check 256
  fi
  # The exported MNIST models: the ONNX checker, and onnxruntime on 256 real test images against tapegrad's
  # outputs (skipped when python3-onnx, node or onnxruntime-node is missing, unless TAPEGRAD_REQUIRE_ONNX=1).
  for m in mlp cnn; do
    [[ -f "$out/$m.manifest.txt" ]] || continue
    rc=0
    bash tests/onnx/check_onnx.sh "$out/$m.manifest.txt" 1e-5 || rc=$?
    if [[ $rc != 0 && $rc != 77 ]]; then echo "run_examples: the exported $m.onnx FAILED its checks" >&2; exit 1; fi
  done
  # a bad flag must print usage and fail
  if "$ex/mnist_mlp" --epochs -3 > "$out/bad.log" 2>&1; then
    echo "run_examples: mnist_mlp accepted --epochs -3" >&2; exit 1
  fi
else
  echo "run_examples: MNIST not found; skipping the MNIST programs"
fi
echo "run_examples: all passed"
