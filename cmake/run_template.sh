#!/usr/bin/env bash
# Builds examples/project_template against an INSTALLED tapegrad, as a learner who copied it would, and runs
# it: a classifier and a regressor on the CSV it ships, predictions on new rows, and bad CSV files, which
# must fail with the file and line in the message. Each run's result is asserted.
#   bash cmake/run_template.sh [PREFIX]     (PREFIX: an installed tapegrad; default: install build/ into a temp dir)
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
prefix=${1:-}
if [[ -z $prefix ]]; then
  prefix="$out/prefix"
  cmake --install build --prefix "$prefix" > /dev/null
fi
launcher=()
command -v ccache > /dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
cmake -S examples/project_template -B "$out/build" -G Ninja -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_CXX_FLAGS=-Werror \
  "${launcher[@]}" > "$out/configure.log" || { cat "$out/configure.log"; exit 1; }
cmake --build "$out/build"
project="$out/build/project"
data=examples/project_template/data

# run NAME REGEX ARGS...: runs the program; its last result line must match REGEX.
run() {
  local name=$1 want=$2; shift 2
  echo "run_template: $name: project $*"
  "$project" "$@" > "$out/$name.log" 2>&1 || { cat "$out/$name.log"; echo "run_template: $name FAILED" >&2; exit 1; }
  local result
  result=$(grep '^result:' "$out/$name.log" | tail -n 1)
  echo "$result"
  [[ $result =~ $want ]] || { cat "$out/$name.log"; echo "run_template: $name: result does not match '$want'" >&2; exit 1; }
}
run classify 'test_accuracy=0\.9[0-9]*' train --data $data/penguins.csv --label species --save "$out/species.safetensors"
run predict_species 'predicted rows=6' predict --model "$out/species.safetensors" --data $data/new_penguins.csv
run regress 'test_r2=0\.[6-9]' train --data $data/penguins.csv --label body_mass_g --task regress --ignore species \
  --epochs 100 --save "$out/mass.safetensors"
run predict_mass 'file_r2=' predict --model "$out/mass.safetensors" --data $data/penguins.csv

# bad_csv NAME MESSAGE CONTENT: training on CONTENT must fail with MESSAGE on stderr.
bad_csv() {
  local name=$1 message=$2 content=$3
  printf '%s' "$content" > "$out/$name.csv"
  if "$project" train --data "$out/$name.csv" --label y > "$out/$name.log" 2>&1; then
    cat "$out/$name.log"; echo "run_template: $name: a bad CSV was accepted" >&2; exit 1
  fi
  grep -qF "$message" "$out/$name.log" || {
    cat "$out/$name.log"; echo "run_template: $name: expected the message '$message'" >&2; exit 1
  }
  echo "run_template: $name rejected: $(tail -n 1 "$out/$name.log")"
}
bad_csv ragged "ragged.csv:3: 2 fields, but the header has 3 columns" $'x1,x2,y\n1,2,a\n3,4\n'
bad_csv not_a_number "not_a_number.csv:4: column 'x2' holds 'abc', which is not a number" $'x1,x2,y\n1,2,a\n3,4,b\n5,abc,a\n'
bad_csv no_label "no_label.csv: no column 'y'" $'x1,x2,z\n1,2,a\n3,4,b\n'
echo "run_template: all passed"
