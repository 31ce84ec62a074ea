#!/usr/bin/env bash
# The thread trap, measured as ratios. Two questions, each answered by alternating the configurations
# within every round (A B A B ...) and taking medians:
#  1. sin_fit (a 1-32-32-1 tanh MLP fitting sin(x) on 512 points, 2,000 Adam steps) at tapegrad's default
#     thread policy against --threads 1, while another process keeps one core busy (a shell busy loop that
#     this script starts and kills, bounded by `timeout` in any case). Target: default / one thread <= 1.2.
#  2. mlp_l (bench/workloads: 784-512-256-10, one MNIST epoch) at the default policy (--threads 0) against
#     every fixed thread count up to the core count, of this build and, with --baseline DIR, of a build of
#     the code before the thread policy (whose products each used OpenMP's count above OpenBLAS's own
#     262,144 multiply-add threshold). Target: default <= the best fixed count (the noise of a shared
#     machine aside).
# It prints the machine's load (uptime) before and after, since the numbers mean little without it.
#
#   bash bench/thread_trap.sh                       # builds build-perf (Release), 5 rounds
#   bash bench/thread_trap.sh --rounds 9 --no-build --build-dir build --baseline /tmp/old/build
#
# Options: --rounds N, --build-dir DIR (default build-perf), --no-build, --skip-mlp, --skip-sin,
# --baseline DIR (a build folder holding bench/workloads of the code to compare with).
set -euo pipefail
cd "$(dirname "$0")/.."

rounds=5 build_dir=build-perf build=1 do_mlp=1 do_sin=1 baseline=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --rounds) rounds="$2"; shift 2 ;;
    --build-dir) build_dir="$2"; shift 2 ;;
    --no-build) build=0; shift ;;
    --skip-mlp) do_mlp=0; shift ;;
    --skip-sin) do_sin=0; shift ;;
    --baseline) baseline="$2"; shift 2 ;;
    *) echo "thread_trap: unknown option $1" >&2; exit 2 ;;
  esac
done

if [[ $build == 1 ]]; then
  cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Release -DTAPEGRAD_BUILD_TESTS=OFF \
    -DTAPEGRAD_BUILD_EXAMPLES=OFF -DTAPEGRAD_BUILD_BENCH=ON >/dev/null
  cmake --build "$build_dir" -j 2 --target sin_fit workloads >/dev/null
fi
cores=$(nproc)
median() { sort -g | awk '{a[NR]=$1} END {if (NR % 2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
# A value from `key=value` in a program's output.
field() { grep -o "$1=[0-9.e+-]*" | tail -1 | cut -d= -f2; }

echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $cores cores"
echo "load before: $(uptime)"
"$build_dir/bench/sin_fit" --steps 1 | head -1

busy_pid=""
stop_busy() { [[ -n $busy_pid ]] && kill "$busy_pid" 2>/dev/null; wait "$busy_pid" 2>/dev/null || true; busy_pid=""; }
trap stop_busy EXIT

if [[ $do_sin == 1 ]]; then
  # One core kept busy for the whole sin_fit series; `timeout` bounds it should this script die.
  timeout 1800 sh -c 'while :; do :; done' &
  busy_pid=$!
  def=() one=()
  for ((r = 1; r <= rounds; r++)); do
    # A run at the old default took 20-60 s here: cap each at 120 s (a capped run counts as 120 s).
    d=$(timeout 120 "$build_dir/bench/sin_fit" | field seconds || true); def+=("${d:-120}")
    o=$(timeout 120 "$build_dir/bench/sin_fit" --threads 1 | field seconds || true); one+=("${o:-120}")
    echo "sin_fit round $r: default ${def[-1]} s, one thread ${one[-1]} s (one core busy)"
  done
  stop_busy
  md=$(printf '%s\n' "${def[@]}" | median) mo=$(printf '%s\n' "${one[@]}" | median)
  echo "sin_fit, one core busy: median default $md s, one thread $mo s, ratio default/one $(awk -v a="$md" -v b="$mo" 'BEGIN {printf "%.2f", a / b}') (target <= 1.2)"
fi

if [[ $do_mlp == 1 ]]; then
  declare -A t
  # Configurations: "new:N" runs this build with --threads N (0: the default policy), "old:N" the baseline.
  configs=(new:0 $(for c in $(seq 1 "$cores"); do echo "new:$c"; done))
  [[ -n $baseline ]] && configs+=($(for c in $(seq 1 "$cores"); do echo "old:$c"; done))
  for ((r = 1; r <= rounds; r++)); do
    line="mlp_l round $r:"
    for c in "${configs[@]}"; do
      dir=$build_dir; [[ $c == old:* ]] && dir=$baseline
      s=$("$dir/bench/workloads" --workload mlp_l --reps 1 --threads "${c#*:}" 2>/dev/null | field epoch_s)
      t[$c]+="$s "
      line+=" $c ${s}s"
    done
    echo "$line   (new:0 is the default policy)"
  done
  best="" best_c=""
  for c in "${configs[@]}"; do
    m=$(printf '%s\n' ${t[$c]} | median)
    echo "mlp_l $c: median epoch $m s"
    if [[ $c != new:0 ]] && { [[ -z $best ]] || awk -v a="$m" -v b="$best" 'BEGIN {exit !(a < b)}'; }; then
      best=$m best_c=$c
    fi
  done
  m0=$(printf '%s\n' ${t[new:0]} | median)
  echo "mlp_l: default $m0 s, best fixed count ($best_c) $best s, ratio default/best $(awk -v a="$m0" -v b="$best" 'BEGIN {printf "%.2f", a / b}') (target <= 1)"
fi
echo "load after: $(uptime)"
