#!/usr/bin/env bash
# The layer order of tapegrad's headers, checked: every #include under include/tapegrad must point to the
# same layer or a lower one. Layers, bottom to top (README, "What is inside"):
#   0 vocabulary      core/error.hpp, core/device.hpp, core/live_counters.hpp (no tensor, no backend)
#   1 backend         backend/**: primitives on raw buffers (CPU and CUDA), functors, plans
#   2 tensor & tape   core/**, autograd/**
#   3 ops             ops/**: every differentiable function
#   4 libraries       nn/**, optim/**, data/**, io/**, util/**, distributed/**
#   5 umbrella        tapegrad.hpp (which must not pull in the CUDA backend)
# Also: nn/ holds Modules only and names no backend (its layers call ops, which call the primitives), and
# only ops/ records onto the tape (autograd/ defines `record`; ops/transfer.hpp is an op).
# Pure bash and grep, well under a second. Usage: bash cmake/check_layers.sh [include-dir]
set -euo pipefail
cd "$(dirname "$0")/.."
root="${1:-include}/tapegrad"

names=("vocabulary" "backend" "tensor & tape" "ops" "nn/optim/data/io/util" "umbrella")
layer_of() {  # path relative to include/tapegrad -> layer number, or "" when no layer claims it
  case "$1" in
    core/error.hpp | core/device.hpp | core/live_counters.hpp) echo 0 ;;
    backend/*) echo 1 ;;
    core/* | autograd/*) echo 2 ;;
    ops/*) echo 3 ;;
    nn/* | optim/* | data/* | io/* | util/* | distributed/*) echo 4 ;;
    tapegrad.hpp) echo 5 ;;
    *) echo "" ;;
  esac
}

files=0 includes=0 bad=0
while IFS= read -r -d '' file; do
  rel="${file#"$root"/}"
  from=$(layer_of "$rel")
  if [[ -z $from ]]; then
    echo "check_layers: $root/$rel belongs to no layer: add its folder to cmake/check_layers.sh and the README"
    bad=$((bad + 1))
    continue
  fi
  files=$((files + 1))
  while IFS= read -r target; do
    includes=$((includes + 1))
    to=$(layer_of "$target")
    if [[ -z $to ]]; then
      echo "check_layers: $root/$rel includes tapegrad/$target, which belongs to no layer"
      bad=$((bad + 1))
    elif ((to > from)); then
      echo "check_layers: $root/$rel (${names[from]}) includes tapegrad/$target (${names[to]}), a higher layer"
      bad=$((bad + 1))
    fi
    if [[ $rel == tapegrad.hpp && $target == backend/cuda* ]]; then
      echo "check_layers: the umbrella header includes tapegrad/$target: the CUDA backend is included on its own"
      bad=$((bad + 1))
    fi
  done < <(sed -n 's|^[[:space:]]*#[[:space:]]*include[[:space:]]*[<"]tapegrad/\([^>"]*\)[>"].*|\1|p' "$file")
done < <(find "$root" -type f \( -name '*.hpp' -o -name '*.cuh' -o -name '*.cu' \) -print0 | sort -z)

while IFS= read -r hit; do
  echo "check_layers: ${hit%%:*} names the backend (line ${hit#*:}): nn/ calls ops, only ops call primitives" | cut -c1-200
  bad=$((bad + 1))
done < <(grep -rn 'backend::\|tapegrad/backend/' "$root/nn" | cut -d: -f1,2 || true)

while IFS= read -r hit; do
  echo "check_layers: ${hit%%:*} records an op (line ${hit#*:}): every differentiable function lives in ops/"
  bad=$((bad + 1))
done < <(grep -rn '\brecord(' "$root" --include='*.hpp' | grep -v "^$root/\(ops\|autograd\)/" | cut -d: -f1,2 || true)

if ((bad > 0)); then
  echo "check_layers: $bad problem(s) with the layer order" >&2
  exit 1
fi
echo "check_layers: $files files, $includes tapegrad includes, every one to the same or a lower layer" \
  "(${names[*]/%/ <})" | sed 's/ <)$/)/; s/ < \(.\)/ < \1/g'
