#!/usr/bin/env bash
# The BLAS trap, measured: a 1024^3 float product (bench_matmul's BM_tapegrad_matmul) and mlp_l
# (bench/workloads, one MNIST epoch) under each way of running products, alternated within every round,
# medians of the rounds, as ratios to the best of the four reference configurations:
#   tapegrad default        OpenBLAS as tapegrad leaves it (its kernel check; blas_info() says which)
#   OpenBLAS CORETYPE=best  OPENBLAS_CORETYPE set to the best core for this CPU (SkylakeX with AVX-512,
#                           Haswell / Zen with AVX2): what tapegrad switches to on a CPU OpenBLAS does not know
#   OpenBLAS generic        OPENBLAS_CORETYPE=Prescott: the kernels OpenBLAS 0.3.21 runs on a CPU it does not
#                           know (shown for scale; tapegrad never overrides an OPENBLAS_CORETYPE it is given)
#   tapegrad from a         the programs' --simulate-blas-trap: OpenBLAS switched to Prescott in the process,
#   simulated trap          then tapegrad's kernel check runs again: the path a user gets on such a CPU
#   Eigen -march=native     -DTAPEGRAD_BLAS=OFF -DTAPEGRAD_NATIVE=ON
#   Eigen default (SSE2)    -DTAPEGRAD_BLAS=OFF
# The four references of the target are OpenBLAS's own choice (the first row, when OpenBLAS knows the
# CPU), CORETYPE=best and the two Eigen builds; the target is tapegrad default <= 1.3x the best of them.
#
#   bash bench/blas_configs.sh                     # builds build-perf{,-eigen,-native}, 3 rounds
#   bash bench/blas_configs.sh --rounds 5 --threads 1 --no-build
#   bash bench/blas_configs.sh --rounds 1 --skip-mlp --blas-build build      # CI: the product only
#
# Options: --rounds N, --threads N (OMP_NUM_THREADS for every run; default: unset, the programs' defaults),
# --no-build, --skip-mlp (the product only; builds only bench_matmul), --blas-build DIR (an existing build
# with TAPEGRAD_BLAS for the OpenBLAS rows, instead of build-perf).
set -euo pipefail
cd "$(dirname "$0")/.."

rounds=3 threads="" build=1 do_mlp=1 blas_build=build-perf
while [[ $# -gt 0 ]]; do
  case "$1" in
    --rounds) rounds="$2"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    --no-build) build=0; shift ;;
    --skip-mlp) do_mlp=0; shift ;;
    --blas-build) blas_build="$2"; shift 2 ;;
    *) echo "blas_configs: unknown option $1" >&2; exit 2 ;;
  esac
done

declare -A dir=([blas]=$blas_build [eigen]=build-perf-eigen [native]=build-perf-native)
declare -A args=([blas]="" [eigen]="-DTAPEGRAD_BLAS=OFF" [native]="-DTAPEGRAD_BLAS=OFF -DTAPEGRAD_NATIVE=ON")
targets=(bench_matmul)
[[ $do_mlp == 1 ]] && targets+=(workloads)
if [[ $build == 1 ]]; then
  for b in blas eigen native; do
    echo "blas_configs: building ${dir[$b]} (${args[$b]:-TAPEGRAD_BLAS=ON})" >&2
    if [[ ! -f ${dir[$b]}/CMakeCache.txt ]]; then
      # shellcheck disable=SC2086
      cmake -S . -B "${dir[$b]}" -G Ninja -DCMAKE_BUILD_TYPE=Release -DTAPEGRAD_BUILD_TESTS=OFF \
        -DTAPEGRAD_BUILD_EXAMPLES=OFF -DTAPEGRAD_BUILD_BENCH=ON ${args[$b]} >/dev/null
    fi
    cmake --build "${dir[$b]}" -j 2 --target "${targets[@]}" >/dev/null
  done
fi

flags=$(grep -m1 '^flags' /proc/cpuinfo)
if [[ $flags == *avx512f* && $flags == *avx512bw* && $flags == *avx512dq* && $flags == *avx512vl* ]]; then
  best_core=SkylakeX
elif [[ $flags == *avx2* ]]; then
  best_core=$([[ $(grep -m1 vendor_id /proc/cpuinfo) == *AMD* ]] && echo Zen || echo Haswell)
else
  best_core=Prescott
fi

names=("tapegrad default" "OpenBLAS CORETYPE=$best_core" "OpenBLAS generic (Prescott)"
       "tapegrad from a simulated trap" "Eigen -march=native" "Eigen default (SSE2)")
builds=(blas blas blas blas native eigen)
coretypes=("" "$best_core" "Prescott" "" "" "")
trap=(0 0 0 1 0 0)      # 1: OpenBLAS switched to Prescott first, then tapegrad's check runs again
reference=(1 1 0 0 1 1)  # the target's four: OpenBLAS's own choice, CORETYPE=best, the two Eigen builds

run() {  # run INDEX PROGRAM ARGS...: the program under configuration INDEX's build, environment and flags
  local i=$1 name=$2; shift 2
  local prog="${dir[${builds[$i]}]}/bench/$name" extra=()
  if [[ $name == workloads ]]; then
    extra+=(--threads "${threads:-0}")  # 0: tapegrad's default policy
    [[ ${trap[$i]} == 1 ]] && extra+=(--simulate-blas-trap)
  elif [[ ${trap[$i]} == 1 ]]; then
    extra+=(--simulate_blas_trap)
  fi
  env ${threads:+OMP_NUM_THREADS=$threads} ${coretypes[$i]:+OPENBLAS_CORETYPE=${coretypes[$i]}} "$prog" "$@" "${extra[@]}"
}
median() { sort -g | awk '{a[NR]=$1} END {if (NR % 2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }

echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores; OMP_NUM_THREADS=${threads:-unset}"
echo "load before: $(uptime)"
for i in "${!names[@]}"; do
  echo "  ${names[$i]}: $(run "$i" bench_matmul --benchmark_filter=none 2>&1 >/dev/null | grep 'matrix products\|simulated' | paste -sd' ')"
done

declare -A gflops epoch
for ((r = 1; r <= rounds; r++)); do
  for i in "${!names[@]}"; do
    g=$(run "$i" bench_matmul --benchmark_filter='BM_tapegrad_matmul/M:1024/K:1024/N:1024$' \
          --benchmark_min_time=1 --benchmark_format=json 2>/dev/null |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["benchmarks"][0]["FLOP/s"] / 1e9)')
    gflops[$i]+="$g "
    if [[ $do_mlp == 1 ]]; then
      e=$(run "$i" workloads --workload mlp_l --reps 1 2>/dev/null | grep -o 'epoch_s=[0-9.e+-]*' | cut -d= -f2)
      epoch[$i]+="$e "
    fi
  done
  echo "round $r done" >&2
done

best_g=0 best_e=1e30
for i in "${!names[@]}"; do
  gm=$(printf '%s\n' ${gflops[$i]} | median); gflops[$i]=$gm
  [[ ${reference[$i]} == 1 ]] && best_g=$(awk -v a="$gm" -v b="$best_g" 'BEGIN {print (a > b ? a : b)}')
  if [[ $do_mlp == 1 ]]; then
    em=$(printf '%s\n' ${epoch[$i]} | median); epoch[$i]=$em
    [[ ${reference[$i]} == 1 ]] && best_e=$(awk -v a="$em" -v b="$best_e" 'BEGIN {print (a < b ? a : b)}')
  fi
done
printf '\n| configuration | 1024^3 GFLOP/s | best/this | mlp_l epoch s | this/best |\n|---|---|---|---|---|\n'
for i in "${!names[@]}"; do
  printf '| %s | %.1f | %.2f |' "${names[$i]}" "${gflops[$i]}" "$(awk -v a="$best_g" -v b="${gflops[$i]}" 'BEGIN {print a / b}')"
  if [[ $do_mlp == 1 ]]; then
    printf ' %.2f | %.2f |\n' "${epoch[$i]}" "$(awk -v a="${epoch[$i]}" -v b="$best_e" 'BEGIN {print a / b}')"
  else
    printf ' - | - |\n'
  fi
done
echo "medians of $rounds rounds; ratios against the best of the four reference rows (all but 'generic' and 'simulated')"
verdict=$(awk -v a="$best_g" -v b="${gflops[0]}" 'BEGIN {print (a / b <= 1.3 ? "met" : "NOT met")}')
echo "target (tapegrad default's 1024^3 product within 1.3x of the best reference): $verdict"
echo "load after: $(uptime)"
