#!/usr/bin/env bash
# tapegrad against LibTorch (and the hand-written Eigen floor) on whole workloads. Builds the workload
# programs (Release, -march=native), then for each workload and thread count runs tapegrad, LibTorch and,
# for mlp_s and mlp_l, Eigen one after another, round after round (A B A B ...), and prints the median of
# every repetition of every round as a Markdown table, with the machine and its load.
#
#   bash bench/compare.sh                               # 3 rounds of --reps 3, 1 and 2 threads
#   bash bench/compare.sh --rounds 2 --workloads "xor mlp_s" --threads "1"
#
# Options: --rounds N, --reps N (repetitions per program run), --threads "1 2", --workloads "xor op_chain
# mlp_s mlp_l cnn lstm_s lstm_l", --build-dir DIR (default build-bench), --data DIR (MNIST), --out DIR (raw lines and the
# table; default DIR/compare), --no-build, --table-only (tabulate the raw lines already in --out again),
# --cmake-args "ARGS" (extra configure arguments, e.g. "-DTAPEGRAD_BLAS=OFF" for Eigen's own products).
# Each program runs with OMP_NUM_THREADS set to its thread count as well as --threads: with TAPEGRAD_BLAS,
# OpenBLAS (not Eigen) threads the products and takes its count from OpenMP, not from Eigen::setNbThreads.
# LibTorch comes from Debian's libtorch-dev; without it the LibTorch column reads n/a. Its speed depends on
# the BLAS behind libblas.so.3: the OpenMP OpenBLAS (libopenblas0-openmp) is the one that agrees with
# LibTorch's OpenMP threads (the pthread build was 2-4x slower at 2 threads), and this script says which
# one is active. For lstm_s and lstm_l LibTorch also runs with OPENBLAS_CORETYPE=SkylakeX on AVX-512 CPUs
# (Debian's OpenBLAS otherwise picks its generic Prescott kernels on CPUs newer than it knows), logged as
# "libtorch_skx"; the table's LibTorch column takes the faster of its two settings and says which.
set -euo pipefail
cd "$(dirname "$0")/.."

rounds=3 reps=3 threads="1 2" workloads="xor op_chain mlp_s mlp_l cnn lstm_s lstm_l" build_dir=build-bench data="" out="" build=1 run=1
cmake_args=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --rounds) rounds="$2"; shift 2 ;;
    --reps) reps="$2"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    --workloads) workloads="$2"; shift 2 ;;
    --build-dir) build_dir="$2"; shift 2 ;;
    --data) data="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --cmake-args) cmake_args="$2"; shift 2 ;;
    --no-build) build=0; shift ;;
    --table-only) build=0 run=0; shift ;;
    -h|--help) sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "compare: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
out=${out:-$build_dir/compare}
read -r -a cmake_argv <<<"$cmake_args"
mkdir -p "$out"
raw="$out/raw.txt" table="$out/table.md" loads="$out/load.txt"
if [[ $run == 1 ]]; then
  : >"$raw"
  : >"$loads"
elif [[ ! -s $raw ]]; then
  echo "compare: --table-only: no raw lines in $raw" >&2
  exit 1
fi

if [[ $build == 1 ]]; then
  echo "compare: building the workload programs in $build_dir (Release, -march=native)" >&2
  cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Release -DTAPEGRAD_NATIVE=ON -DTAPEGRAD_BUILD_TESTS=OFF \
    -DTAPEGRAD_BUILD_EXAMPLES=OFF -DTAPEGRAD_BUILD_BENCH=ON -DTAPEGRAD_BENCH_LIBTORCH=ON "${cmake_argv[@]}" >/dev/null
  targets=(workloads workloads_eigen)
  if cmake --build "$build_dir" --target help | grep -q '^workloads_libtorch:'; then
    targets+=(workloads_libtorch)
  fi
  cmake --build "$build_dir" -j "$(nproc)" --target "${targets[@]}" >&2
fi
bin="$build_dir/bench"
have_torch=0
[[ -x $bin/workloads_libtorch ]] && have_torch=1
[[ $have_torch == 1 ]] || echo "compare: no $bin/workloads_libtorch (LibTorch not found): its columns read n/a" >&2

blas=$(update-alternatives --query libblas.so.3-x86_64-linux-gnu 2>/dev/null | awk '/^Value:/ {print $2}' || true)
case "$blas" in
  *openblas-openmp*) blas_name="OpenBLAS (OpenMP)" ;;
  *openblas-pthread*) blas_name="OpenBLAS (pthreads)"
    echo "compare: warning: libblas.so.3 is the pthread OpenBLAS; LibTorch is much slower with it at 2 threads." >&2
    echo "compare: apt-get install libopenblas0-openmp, then update-alternatives --set for libblas.so.3," >&2
    echo "compare: liblapack.so.3 and libopenblas.so.0 to the openblas-openmp paths." >&2 ;;
  "") blas_name="unknown" ;;
  *) blas_name="$blas" ;;
esac

data_flag=()
[[ -n $data ]] && data_flag=(--data "$data")

# One program run: its lines go to the raw log (and stderr, to follow along); the 1-minute load average
# before it goes to the load log as "program workload threads load".
run_one() {
  local prog=$1 workload=$2 t=$3
  echo "$prog $workload $t $(cut -d' ' -f1 /proc/loadavg)" >>"$loads"
  OMP_NUM_THREADS=$t "$bin/$prog" --workload="$workload" --reps="$reps" --threads="$t" "${data_flag[@]}" |
    tee -a "$raw" >&2
}
# LibTorch with OpenBLAS's SkylakeX kernels forced, its lines renamed "libtorch_skx".
run_torch_skx() {
  local workload=$1 t=$2
  echo "libtorch_skx $workload $t $(cut -d' ' -f1 /proc/loadavg)" >>"$loads"
  OPENBLAS_CORETYPE=SkylakeX OMP_NUM_THREADS=$t "$bin/workloads_libtorch" --workload="$workload" --reps="$reps" \
    --threads="$t" "${data_flag[@]}" | sed 's/^libtorch /libtorch_skx /' | tee -a "$raw" >&2
}
have_avx512=0
grep -qw avx512f /proc/cpuinfo && have_avx512=1

start=$(date +%s)
for ((round = 1; round <= rounds * run; ++round)); do
  echo "compare: round $round of $rounds" >&2
  for w in $workloads; do
    for t in $threads; do
      run_one workloads "$w" "$t"
      [[ $have_torch == 1 ]] && run_one workloads_libtorch "$w" "$t"
      if [[ $have_torch == 1 && $have_avx512 == 1 && $w == lstm_* ]]; then run_torch_skx "$w" "$t"; fi
      if [[ $w == mlp_s || $w == mlp_l ]]; then run_one workloads_eigen "$w" "$t"; fi
    done
  done
done
elapsed=$(($(date +%s) - start))
if [[ $run == 0 ]]; then
  rounds=$(awk '$1 == "tapegrad" && $4 == "rep=1" { n[$2 " " $3]++ } END { for (k in n) if (n[k] > m) m = n[k]; print m + 0 }' "$raw")
  reps=$(awk '$4 ~ /^rep=/ { sub(/^rep=/, "", $4); if ($4 + 0 > m) m = $4 + 0 } END { print m + 0 }' "$raw")
  elapsed="?"
fi

# ---- the table ------------------------------------------------------------------------------------------

median() {  # of the numbers on stdin, one per line; empty if none
  sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) exit; if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
# All values of `metric` for framework, workload, threads, from the raw lines "fw workload threads rep=R k=v ...".
values() {
  awk -v fw="$1" -v w="$2" -v t="$3" -v m="$4" '$1 == fw && $2 == w && $3 == t && $4 ~ /^rep=/ {
    for (i = 5; i <= NF; ++i) { split($i, kv, "="); if (kv[1] == m) print kv[2] } }' "$raw"
}
med() { values "$@" | median; }
best() { values "$@" | sort -g | head -n 1; }
fmt() { [[ -z $1 ]] && { echo "n/a"; return; }; awk -v x="$1" -v d="$2" 'BEGIN { printf "%.*f", d, x }'; }
ratio() { [[ -z $1 || -z $2 ]] && { echo "n/a"; return; }; awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'; }
# "yes"/"no" for value <= limit.
meets() { [[ -z $1 ]] && { echo "n/a"; return; }; awk -v x="$1" -v l="$2" 'BEGIN { print (x <= l ? "yes" : "no") }'; }

# Median load average before the runs of one workload and thread count.
row_load() { awk -v w="$1" -v t="$2" '$2 == w && $3 == t { print $4 }' "$loads" | median; }
metric_of() { case $1 in xor) echo us_per_step ;; op_chain) echo fwdbwd_ns_per_op ;; lstm_*) echo ms_per_step ;; *) echo epoch_s ;; esac; }
unit_of() { case $1 in xor) echo "us/step" ;; op_chain) echo "ns/link" ;; lstm_*) echo "ms/step" ;; *) echo "s/epoch" ;; esac; }
digits_of() { case $1 in xor) echo 2 ;; op_chain) echo 0 ;; lstm_*) echo 2 ;; *) echo 3 ;; esac; }
target_of() { case $1 in xor) echo 0.05 ;; op_chain) echo 0.0333 ;; mlp_s) echo 0.8 ;; mlp_l) echo 0.95 ;; cnn) echo 1.0 ;; lstm_s) echo 0.25 ;; lstm_l) echo 0.7 ;; esac; }
target_text() { case $1 in xor) echo "<= 0.05 (20x)" ;; op_chain) echo "<= 0.033 (30x)" ;; mlp_s) echo "<= 0.8" ;; mlp_l) echo "<= 0.95" ;; cnn) echo "<= 1.0" ;; lstm_s) echo "<= 0.25" ;; lstm_l) echo "<= 0.7" ;; esac; }
# The faster of LibTorch's two settings (default, SkylakeX kernels): "framework" for med and best.
torch_fw() {
  local a b
  a=$(med libtorch "$1" "$2" "$3") b=$(med libtorch_skx "$1" "$2" "$3")
  if [[ -n $b && ( -z $a || $(awk -v a="$a" -v b="$b" 'BEGIN { print (b < a) }') == 1 ) ]]; then echo libtorch_skx; else echo libtorch; fi
}

model=$(lscpu | awk -F: '/^Model name/ { sub(/^[ \t]+/, "", $2); print $2; exit }')
cores=$(lscpu | awk -F: '/^Core\(s\) per socket/ { c = $2 } /^Socket\(s\)/ { s = $2 } END { print c * s }')
cpus=$(nproc)
load_min=$(awk '{ print $4 }' "$loads" | sort -g | head -n 1)
load_med=$(awk '{ print $4 }' "$loads" | median)
load_max=$(awk '{ print $4 }' "$loads" | sort -g | tail -n 1)
torch_version=$(dpkg-query -W -f='${Version}' libtorch-dev 2>/dev/null || echo "n/a")
cxx_version=$(c++ --version 2>/dev/null | head -n 1)
# tapegrad and the Eigen floor share one setting: both get EIGEN_USE_BLAS from tapegrad::tapegrad.
products="Eigen's own kernels"
grep -q EIGEN_USE_BLAS "$build_dir/build.ninja" 2>/dev/null && products="OpenBLAS (TAPEGRAD_BLAS)"

{
  echo "Machine: $model, $cores cores ($cpus CPUs). $cxx_version, Release, -march=native. LibTorch $torch_version"
  echo "with $blas_name. Matrix products of tapegrad and the Eigen floor: $products."
  echo "$(date -u '+%Y-%m-%d %H:%M UTC'); $rounds rounds x $reps repetitions per program and"
  echo "thread count, programs alternated within each round, medians of all repetitions ($elapsed s in all);"
  echo "\"best reps\" compares the fastest repetition of each, which sporadic interference affects least."
  echo "1-minute load average before each run (our own run included): min $load_min, median $load_med, max $load_max."
  echo "With $cpus CPUs, a load above $cpus minus the thread count means other processes took turns on our cores:"
  echo "OpenMP's barriers then wait for a descheduled thread, and the 2-thread rows suffer most."
  echo
  echo "| workload | threads | metric | tapegrad | LibTorch | Eigen floor | tapegrad / LibTorch | target | met | same, best reps | tapegrad / Eigen | test acc (tapegrad / LibTorch / Eigen) | load |"
  echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
  for w in $workloads; do
    m=$(metric_of "$w") d=$(digits_of "$w")
    for t in $threads; do
      tg=$(med tapegrad "$w" "$t" "$m")
      tfw=$(torch_fw "$w" "$t" "$m")
      lt=$(med "$tfw" "$w" "$t" "$m")
      eg=$(med eigen "$w" "$t" "$m")
      r=$(ratio "$tg" "$lt")
      met=n/a
      [[ $r == n/a ]] || met=$(meets "$r" "$(target_of "$w")")
      acc="-"
      if [[ $m == epoch_s ]]; then
        acc="$(fmt "$(med tapegrad "$w" "$t" test_acc)" 4) / $(fmt "$(med libtorch "$w" "$t" test_acc)" 4)"
        acc+=" / $(fmt "$(med eigen "$w" "$t" test_acc)" 4)"
      fi
      lt_text=$(fmt "$lt" "$d")
      [[ $tfw == libtorch_skx ]] && lt_text+=" (SkylakeX)"
      echo "| $w | $t | $(unit_of "$w") | $(fmt "$tg" "$d") | $lt_text | $(fmt "$eg" "$d") | $r |" \
           "$(target_text "$w") | $met | $(ratio "$(best tapegrad "$w" "$t" "$m")" "$(best "$tfw" "$w" "$t" "$m")") |" \
           "$(ratio "$tg" "$eg") | $acc | $(fmt "$(row_load "$w" "$t")" 2) |"
    done
  done
} | tee "$table"
echo "compare: raw lines in $raw, table in $table" >&2
