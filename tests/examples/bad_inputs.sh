#!/usr/bin/env bash
# The example programs given bad input, as a new user would: each case must fail at once with a sentence
# (exit code not 0, no crash, no C++ exception text), leave existing files as they were, and leave no
# temporary files behind. Runs on small synthetic MNIST-format folders, so it needs no download.
#   bash tests/examples/bad_inputs.sh BUILD/examples
set -uo pipefail
ex=${1:?usage: bad_inputs.sh EXAMPLES_DIR}
tmp=$(mktemp -d)
trap 'chmod -R u+w "$tmp" 2>/dev/null; rm -rf "$tmp"' EXIT
failures=0
fail() { echo "bad_inputs: FAIL: $*" >&2; failures=$((failures + 1)); }

be32() { printf "\\x%02x\\x%02x\\x%02x\\x%02x" $(($1 >> 24 & 255)) $(($1 >> 16 & 255)) $(($1 >> 8 & 255)) $(($1 & 255)); }
# images FILE COUNT SIDE, labels FILE COUNT: IDX files (random pixels, labels 0..9 in turn).
images() { { printf '\x00\x00\x08\x03'; printf "$(be32 "$2")$(be32 "$3")$(be32 "$3")"; head -c $(($2 * $3 * $3)) /dev/urandom; } > "$1"; }
labels() {
  { printf '\x00\x00\x08\x01'; printf "$(be32 "$2")"
    for ((i = 0; i < $2; i++)); do printf "\\x$(printf %02x $((i % 10)))"; done; } > "$1"
}
# folder DIR TRAIN_SIDE TEST_SIDE: 64 training and 5 test images.
folder() {
  mkdir -p "$1"
  images "$1/train-images-idx3-ubyte" 64 "$2"; labels "$1/train-labels-idx1-ubyte" 64
  images "$1/t10k-images-idx3-ubyte" 5 "$3"; labels "$1/t10k-labels-idx1-ubyte" 5
}
folder "$tmp/good" 28 28
folder "$tmp/mixed" 28 14
folder "$tmp/small" 14 14

# expect_fail NAME TEXT CMD...: CMD exits non-zero, prints TEXT, and shows no sign of a crash.
expect_fail() {
  local name=$1 text=$2; shift 2
  local out rc before=$failures
  out=$("$@" 2>&1); rc=$?
  if [[ $rc == 0 ]]; then fail "$name: exit code 0"; fi
  if [[ $rc -ge 128 ]]; then fail "$name: killed by a signal (exit $rc)"; fi
  if ! grep -qF -- "$text" <<<"$out"; then fail "$name: no '$text' in: $out"; fi
  if grep -qE 'terminate called|stoll|bad_alloc|Segmentation|[0-9]{25}' <<<"$out"; then fail "$name: crash-like output: $out"; fi
  if grep -qE '^epoch ' <<<"$out"; then fail "$name: trained before failing: $out"; fi
  if grep -qE '^([a-z_]+): \1: ' <<<"$out"; then fail "$name: doubled error prefix: $out"; fi
  if [[ $failures == "$before" ]]; then echo "bad_inputs: ok: $name: $(grep -F -- "$text" <<<"$out" | head -n 1)"; fi
}
no_temporaries() { if ls "$1" | grep -q '\.tmp-'; then fail "temporary files left in $1: $(ls "$1")"; fi; }

mlp=("$ex/mnist_mlp" --data "$tmp/good" --epochs 1 --hidden 8 --batch 16)

# Flags: every bad value is a sentence naming it.
expect_fail "--hidden 32,,16" "has an empty item at position 2" "${mlp[@]}" --hidden 32,,16
expect_fail "a stray argument" "unexpected argument 'extra'" "${mlp[@]}" --hidden 32 extra
expect_fail "a stray argument after --index" "unexpected argument 'extra'" "$ex/mnist_predict" --model /dev/null --index 3 extra
expect_fail "--lr -1" "-1 is outside [1e-12, 1e+30]" "${mlp[@]}" --lr -1
expect_fail "--epochs -3" "-3 is outside [1, 1000]" "${mlp[@]}" --epochs -3
expect_fail "xor: a stray argument" "unexpected argument 'extra'" "$ex/xor" extra
expect_fail "xor: --lr -1" "-1 is outside [1e-06, 100]" "$ex/xor" --lr -1
expect_fail "regression: --epochs 1.5" "'1.5' is not an integer" "$ex/regression" --epochs 1.5

# Data: training and test images must agree, before any training.
expect_fail "mixed image sizes" "the training images are 28x28 but the test images are 14x14" \
  "$ex/mnist_mlp" --data "$tmp/mixed" --epochs 1

# --save: an unwritable path fails before training.
expect_fail "--save into a missing folder" "its folder '/nonexistent/dir' does not exist" \
  "${mlp[@]}" --save /nonexistent/dir/m.safetensors
if [[ $(id -u) != 0 ]]; then
  mkdir "$tmp/ro" && chmod a-w "$tmp/ro"
  expect_fail "--save into a read-only folder" "cannot create temporary file" "${mlp[@]}" --save "$tmp/ro/m.safetensors"
fi
mkdir -p "$tmp/pair/m.safetensors.optim"; echo old > "$tmp/pair/m.safetensors"
expect_fail "--save whose .optim is a folder" "m.safetensors.optim': is a folder" "${mlp[@]}" --save "$tmp/pair/m.safetensors"
[[ $(cat "$tmp/pair/m.safetensors") == old ]] || fail "--save: the model file changed although the optimizer's could not be written"
no_temporaries "$tmp/pair"

# A diverging run stops with a sentence and does not overwrite the checkpoint.
mkdir -p "$tmp/nan"; echo old > "$tmp/nan/m.safetensors"
expect_fail "--lr 1e30" "training diverged" "${mlp[@]}" --lr 1e30 --save "$tmp/nan/m.safetensors"
[[ $(cat "$tmp/nan/m.safetensors") == old ]] || fail "--lr 1e30: the checkpoint was overwritten"
[[ ! -e "$tmp/nan/m.safetensors.optim" ]] || fail "--lr 1e30: an optimizer state was written"
no_temporaries "$tmp/nan"
if [[ -x "$ex/mnist_cnn" ]]; then
  expect_fail "mnist_cnn --save into a missing folder" "does not exist" "$ex/mnist_cnn" --data "$tmp/good" \
    --save /nonexistent/dir/c.safetensors
fi

# mnist_predict: a good model, then bad indices, a test set of another size, damaged metadata.
mkdir -p "$tmp/ok"
if ! out=$("${mlp[@]}" --save "$tmp/ok/m.safetensors" 2>&1); then fail "training the fixture model failed: $out"; fi
no_temporaries "$tmp/ok"
predict=("$ex/mnist_predict" --model "$tmp/ok/m.safetensors")
out=$("${predict[@]}" --data "$tmp/good" --index 4 2>&1) || fail "mnist_predict --index 4 failed: $out"
expect_fail "--index 9999" "--index 9999 is out of range: '$tmp/good' holds 5 test images" \
  "${predict[@]}" --data "$tmp/good" --index 9999
expect_fail "--index 7" "--index 7 is out of range" "${predict[@]}" --data "$tmp/good" --index 7
expect_fail "--index -1" "-1 is outside [0," "${predict[@]}" --data "$tmp/good" --index -1
expect_fail "14x14 test images" "are 14x14 (196 pixels) but the model takes 784 inputs" \
  "${predict[@]}" --data "$tmp/small" --index 0
# Same-length edits of the JSON header keep the file well-formed and change only the metadata.
LC_ALL=C sed 's/"tapegrad.hidden":"8"/"tapegrad.hidden":"x"/' "$tmp/ok/m.safetensors" > "$tmp/ok/bad.safetensors"
expect_fail "metadata that is not a number" "has bad tapegrad.hidden metadata: 'x' is not an integer" \
  "$ex/mnist_predict" --model "$tmp/ok/bad.safetensors" --data "$tmp/good"
LC_ALL=C sed 's/"tapegrad.hidden":"8"/"tapegrad.hidden":"9"/' "$tmp/ok/m.safetensors" > "$tmp/ok/bad.safetensors"
expect_fail "metadata that does not match the tensors" "does not match tapegrad.hidden '9'" \
  "$ex/mnist_predict" --model "$tmp/ok/bad.safetensors" --data "$tmp/good"

if [[ $failures -gt 0 ]]; then echo "bad_inputs: $failures case(s) failed" >&2; exit 1; fi
echo "bad_inputs: all passed"
