#!/usr/bin/env bash
# The one script a GPU session runs for the CUDA backend: build, test, sanitize, train, benchmark.
#
#   bash bench/gpu_check.sh [--data DIR] [--build DIR] [--jobs N] [--rounds N] [--reps N] [--budget S]
#                           [--python EXE] [--skip-build] [--dry-run]
#
# Steps, each under `timeout`, its output in a log under $OUT (default out/gpu):
#   env        nvidia-smi and the versions of nvcc, g++, cmake, ninja, PyTorch, compute-sanitizer
#   configure  Release, -DTAPEGRAD_CUDA=ON, sm_90, tests+examples+bench; the header-only packages carried in
#              .deps/ (bench/gpu_prepare_deps.sh) come first on CMAKE_PREFIX_PATH
#   build      only tapegrad_cuda_tests, mnist_mlp and workloads_cuda
#   tests      tapegrad_cuda_tests, then again under compute-sanitizer --tool memcheck
#   mnist      mnist_mlp --epochs 2 on the GPU (eager, saving a checkpoint, and --graph) and on the CPU; the test
#              accuracies must agree within 0.01, and the GPU checkpoint evaluated on the CPU must give the
#              GPU's own accuracy
#   bench      per round and workload (mlp_s, mlp_l, mlp_xl): tapegrad-cuda and tapegrad-graph
#              (bench/workloads_cuda --mode eager|graph), then pytorch-eager and pytorch-graph
#              (bench/gpu_workloads.py), --reps each; --rounds rounds
#   table      $OUT/summary.md: every step's status, then the medians and the ratios of epoch times
# A failing step does not stop the script; it ends non-zero when any step failed or was skipped. No step
# starts once --budget seconds (default 480) have passed, and each step's timeout is cut to what is left,
# so the whole run stays inside 9 minutes; benchmark rounds run in full one after another, so a cut leaves
# whole rounds. --dry-run prints the steps and writes the (empty) table without running anything.
#
# MNIST: --data DIR, else .deps/mnist (carried), else /root/.cache/tapegrad/mnist; raw or .gz IDX files.
set -uo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root" || exit 2
out=${OUT:-out/gpu}
data="" build=build-gpu jobs=16 rounds=3 reps=3 budget=480 python="" dry_run=0 skip_build=0
while [[ $# -gt 0 ]]; do
  case $1 in
    --data) data=$2; shift 2 ;;
    --build) build=$2; shift 2 ;;
    --jobs) jobs=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --reps) reps=$2; shift 2 ;;
    --budget) budget=$2; shift 2 ;;
    --python) python=$2; shift 2 ;;
    --skip-build) skip_build=1; shift ;;
    --dry-run) dry_run=1; shift ;;
    -h|--help) sed -n '2,25p' "$0"; exit 0 ;;
    *) echo "gpu_check: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
mkdir -p "$out"/logs || { echo "gpu_check: cannot create $out" >&2; exit 2; }
out=$(cd "$out" && pwd)
[[ $build = /* ]] || build=$root/$build
[[ -d /usr/local/cuda/bin ]] && PATH=$PATH:/usr/local/cuda/bin
t_start=$SECONDS

# ---- bookkeeping ---------------------------------------------------------------------------------------
names=() statuses=() rcs=() secs=() logs=() notes=()
record() {  # NAME STATUS RC SECONDS LOG NOTE
  names+=("$1") statuses+=("$2") rcs+=("$3") secs+=("$4") logs+=("${5#"$out"/}") notes+=("$6")
  printf '[%4ds] %-4s %-28s rc=%-4s %4ss  %s\n' $((SECONDS - t_start)) "$2" "$1" "$3" "$4" "$6"
}
left() { echo $((budget - (SECONDS - t_start))); }

# run_step NAME LIMIT LOG CMD...: runs CMD under `timeout`, output to LOG; returns CMD's exit status.
run_step() {
  local name=$1 limit=$2 log=$3 rc t0 note="" status
  shift 3
  if ((dry_run)); then
    printf '[dry-run] %-28s timeout %3ss  %s\n' "$name" "$limit" "$*"
    names+=("$name") statuses+=(DRY) rcs+=(-) secs+=(0) logs+=("${log#"$out"/}") notes+=("not run (--dry-run)")
    return 0
  fi
  if (($(left) < 15)); then
    record "$name" SKIP - 0 "$log" "out of time (--budget ${budget}s)"
    return 125
  fi
  ((limit > $(left))) && limit=$(left)
  printf '$ %s\n# timeout %ss, started %s\n' "$*" "$limit" "$(date -u +%FT%TZ)" >"$log"
  t0=$SECONDS
  timeout -k 10 "$limit" "$@" >>"$log" 2>&1
  rc=$?
  status=PASS
  if ((rc != 0)); then
    status=FAIL
    note="see log"
    ((rc == 124 || rc == 137)) && note="timed out after ${limit}s"
  fi
  record "$name" "$status" "$rc" $((SECONDS - t0)) "$log" "$note"
  if ((rc != 0)); then tail -n 12 "$log" | sed 's/^/    | /'; fi
  return "$rc"
}

# ---- env: the machine and the tools ---------------------------------------------------------------------
gpu_present=0
if command -v nvidia-smi >/dev/null 2>&1 && timeout 20 nvidia-smi -L 2>/dev/null | grep -q '^GPU'; then gpu_present=1; fi
pick_python() {
  local p
  for p in "$python" python3 /usr/bin/python3 /opt/conda/bin/python python; do
    [[ -n $p ]] && command -v "$p" >/dev/null 2>&1 && timeout 60 "$p" -c 'import torch' >/dev/null 2>&1 && { echo "$p"; return; }
  done
  echo ""
}
py=$(pick_python)
sanitizer=$(command -v compute-sanitizer || echo "")
{
  echo "== gpu_check $(date -u +%FT%TZ) on $(hostname), repo $(git -C "$root" rev-parse --short HEAD 2>/dev/null)"
  echo "== nvidia-smi"
  timeout 20 nvidia-smi 2>&1 || echo "(nvidia-smi unavailable or failed: no GPU visible)"
  echo "== tools"
  echo "nvcc: $(nvcc --version 2>&1 | grep -i release || echo missing)"
  echo "g++: $(g++ --version 2>&1 | head -n 1)"
  echo "cmake: $(cmake --version 2>&1 | head -n 1)"
  echo "ninja: $(ninja --version 2>&1 || echo missing)"
  echo "compute-sanitizer: ${sanitizer:-missing} $([[ -n $sanitizer ]] && "$sanitizer" --version 2>&1 | grep -i version | head -n 1)"
  if [[ -n $py ]]; then
    echo "python: $py: $(timeout 60 "$py" -c 'import sys, torch; print("Python %s, torch %s, CUDA %s, cuda available: %s" % (sys.version.split()[0], torch.__version__, torch.version.cuda, torch.cuda.is_available()))' 2>&1 | tail -n 1)"
  else
    echo "python: no python with torch found (tried --python, python3, /usr/bin/python3, /opt/conda/bin/python)"
  fi
  echo "cpu: $(nproc) cores; GPU visible to nvidia-smi: $gpu_present"
} 2>&1 | tee "$out/env.log"

# ---- MNIST ------------------------------------------------------------------------------------------------
has_mnist() {
  local d=$1 f
  for f in train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte; do
    [[ -f $d/$f || -f $d/$f.gz ]] || return 1
  done
}
if [[ -n $data ]]; then
  has_mnist "$data" || { record mnist-data FAIL - 0 env.log "--data $data lacks the four MNIST IDX files"; data=""; }
else
  for d in "$root/.deps/mnist" /root/.cache/tapegrad/mnist; do
    has_mnist "$d" && { data=$d; break; }
  done
  [[ -n $data ]] || record mnist-data FAIL - 0 env.log "MNIST not in .deps/mnist nor /root/.cache/tapegrad/mnist (bench/gpu_prepare_deps.sh)"
fi
[[ -n $data ]] && echo "MNIST: $data"

# ---- configure: which packages come from .deps ------------------------------------------------------------
prefix=()
[[ -d $root/.deps/share/cmake ]] && prefix+=("$root/.deps")
extra=()
# Eigen and Google Benchmark: the machine's own where CMake finds them (asked of CMake itself, without .deps).
probe=$build/probe
mkdir -p "$probe"
cat >"$probe/CMakeLists.txt" <<'EOF'
cmake_minimum_required(VERSION 3.20)
project(gpu_check_probe LANGUAGES NONE)
find_package(Eigen3 3.4 QUIET NO_MODULE)
find_package(benchmark QUIET)
message(STATUS "probe: Eigen3=${Eigen3_FOUND} benchmark=${benchmark_FOUND}")
EOF
probe_out=$(cmake -S "$probe" -B "$probe/build" 2>&1 | grep 'probe:')
echo "system packages: ${probe_out#-- probe: }"
if [[ $probe_out != *"Eigen3=1"* ]]; then
  if [[ -d $root/.deps/eigen ]]; then
    prefix+=("$root/.deps/eigen")
    echo "Eigen 3.4: not installed here, using the carried .deps/eigen"
  else
    echo "Eigen 3.4: not installed here and not carried (bench/gpu_prepare_deps.sh): configure will fail"
  fi
fi
if [[ $probe_out != *"benchmark=1"* ]]; then
  # bench/CMakeLists.txt requires Google Benchmark for the bench_* programs, none of which is built here:
  # a stub package satisfies find_package (building a bench_* target in this build directory fails to link).
  mkdir -p "$build/stub/benchmark"
  cat >"$build/stub/benchmark/benchmarkConfig.cmake" <<'EOF'
# Stub written by bench/gpu_check.sh: Google Benchmark is not installed; no bench_* target is built.
if(NOT TARGET benchmark::benchmark)
  add_library(benchmark::benchmark INTERFACE IMPORTED)
endif()
EOF
  extra+=("-Dbenchmark_DIR=$build/stub/benchmark")
  echo "Google Benchmark: not installed here, a stub package stands in (no bench_* program is built)"
fi
# zlib: the headers may come from .deps; the library must be the machine's. Without the -dev package's
# unversioned libz.so, point CMake at the runtime libz.so.1.
if ! compgen -G "/usr/lib/*/libz.so" >/dev/null && ! compgen -G "/usr/lib*/libz.so" >/dev/null &&
   ! compgen -G "/usr/lib/*/libz.a" >/dev/null && ! compgen -G "/usr/local/lib/libz.*" >/dev/null; then
  libz=$(ldconfig -p 2>/dev/null | awk '/libz\.so\.1 .*x86-64/ {print $NF; exit}')
  [[ -z $libz ]] && libz=$(compgen -G "/usr/lib/*/libz.so.1" | head -n 1)
  if [[ -n $libz ]]; then
    extra+=("-DZLIB_LIBRARY=$libz")
    echo "zlib: no libz.so/libz.a, linking the runtime $libz"
  else
    echo "zlib: no libz found: tapegrad::io (and so mnist_mlp, workloads_cuda) will be missing"
  fi
fi
if [[ ! -f /usr/include/zlib.h && -f $root/.deps/include/zlib.h ]]; then
  extra+=("-DZLIB_INCLUDE_DIR=$root/.deps/include")
fi
generator=()
keep_going=(-k)
if command -v ninja >/dev/null 2>&1; then generator=(-G Ninja); keep_going=(-k 0); fi
prefix_path=$(IFS=';'; echo "${prefix[*]:-}")

if ((skip_build)); then
  record configure SKIP - 0 - "--skip-build"
  record build SKIP - 0 - "--skip-build: using $build as it is"
else
  run_step configure 120 "$out/logs/configure.log" cmake -S "$root" -B "$build" "${generator[@]}" \
    -DCMAKE_BUILD_TYPE=Release -DTAPEGRAD_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 -DTAPEGRAD_BUILD_TESTS=ON \
    -DTAPEGRAD_BUILD_EXAMPLES=ON -DTAPEGRAD_BUILD_BENCH=ON "-DCMAKE_PREFIX_PATH=$prefix_path" "${extra[@]}"
  if grep -q 'need zlib and nlohmann-json\|needs zlib and nlohmann-json' "$out/logs/configure.log" 2>/dev/null; then
    echo "    | tapegrad::io is missing (zlib or nlohmann-json not found): mnist_mlp and workloads_cuda are not built"
  fi
  run_step build 300 "$out/logs/build.log" cmake --build "$build" -j "$jobs" \
    --target tapegrad_cuda_tests mnist_mlp workloads_cuda -- "${keep_going[@]}"
fi

tests_bin=$build/tests/tapegrad_cuda_tests
mlp_bin=$build/examples/mnist_mlp
bench_bin=$build/bench/workloads_cuda
# need BIN NAME LOG: records a failure when the build did not produce BIN.
need() {
  ((dry_run)) && return 0
  [[ -x $1 ]] && return 0
  record "$2" FAIL - 0 "$3" "$1 was not built (see logs/build.log)"
  return 1
}

# ---- tests ------------------------------------------------------------------------------------------------
if need "$tests_bin" cuda-tests "$out/logs/cuda_tests.log"; then
  run_step cuda-tests 120 "$out/logs/cuda_tests.log" "$tests_bin" --no-version=true
  if ((gpu_present)) && grep -q 'skipped: no CUDA GPU' "$out/logs/cuda_tests.log" 2>/dev/null; then
    record cuda-tests-ran-on-gpu FAIL - 0 "$out/logs/cuda_tests.log" "tests skipped although nvidia-smi sees a GPU"
  fi
fi
if [[ -z $sanitizer ]] && ((!dry_run)); then
  record memcheck FAIL - 0 "$out/env.log" "compute-sanitizer not found (PATH, /usr/local/cuda/bin)"
elif need "$tests_bin" memcheck "$out/logs/memcheck.log"; then
  # --error-exitcode: a memcheck finding fails the step even where the tests themselves pass.
  run_step memcheck 150 "$out/logs/memcheck.log" "${sanitizer:-compute-sanitizer}" --tool memcheck \
    --error-exitcode 86 --print-limit 50 "$tests_bin" --no-version=true
fi

# ---- mnist_mlp: GPU against CPU -----------------------------------------------------------------------------
acc_of() { sed -n 's/^result: test_accuracy=\([0-9.]*\).*/\1/p' "$1" 2>/dev/null | tail -n 1; }
if [[ -z $data ]] && ((!dry_run)); then
  record mnist-mlp SKIP - 0 "$out/env.log" "no MNIST"
elif need "$mlp_bin" mnist-mlp "$out/logs/mnist_mlp_cuda.log"; then
  run_step mnist-mlp-cuda 120 "$out/logs/mnist_mlp_cuda.log" "$mlp_bin" --device cuda --epochs 2 --data "$data" \
    --save "$out/mlp_cuda.safetensors"
  run_step mnist-mlp-cuda-graph 120 "$out/logs/mnist_mlp_cuda_graph.log" "$mlp_bin" --device cuda --graph --epochs 2 \
    --data "$data"
  # The GPU-trained checkpoint evaluated on the CPU must give the GPU's own test accuracy.
  run_step mnist-mlp-cuda-to-cpu 60 "$out/logs/mnist_mlp_cuda_to_cpu.log" "$mlp_bin" --load \
    "$out/mlp_cuda.safetensors" --eval-only --data "$data"
  cpu_threads=$(($(nproc) / 2)); ((cpu_threads > 8)) && cpu_threads=8; ((cpu_threads < 1)) && cpu_threads=1
  run_step mnist-mlp-cpu 150 "$out/logs/mnist_mlp_cpu.log" "$mlp_bin" --epochs 2 --threads "$cpu_threads" --data "$data"
  if ((!dry_run)); then
    a_gpu=$(acc_of "$out/logs/mnist_mlp_cuda.log") a_cpu=$(acc_of "$out/logs/mnist_mlp_cpu.log")
    if [[ -n $a_gpu && -n $a_cpu ]]; then
      verdict=$(awk -v g="$a_gpu" -v c="$a_cpu" 'BEGIN { d = g - c; if (d < 0) d = -d; printf "%s %.4f", (d <= 0.01 ? "PASS" : "FAIL"), d }')
      record mnist-mlp-agree "${verdict%% *}" - 0 "$out/logs/mnist_mlp_cuda.log" \
        "test accuracy cuda $a_gpu, cpu $a_cpu: |diff| ${verdict#* } (limit 0.01)"
    else
      record mnist-mlp-agree FAIL - 0 "$out/logs/mnist_mlp_cuda.log" "no result line (cuda '${a_gpu}', cpu '${a_cpu}')"
    fi
    a_graph=$(acc_of "$out/logs/mnist_mlp_cuda_graph.log") a_back=$(acc_of "$out/logs/mnist_mlp_cuda_to_cpu.log")
    if [[ -n $a_graph && -n $a_gpu ]]; then
      verdict=$(awk -v g="$a_graph" -v c="$a_gpu" 'BEGIN { d = g - c; if (d < 0) d = -d; printf "%s %.4f", (d <= 0.01 ? "PASS" : "FAIL"), d }')
      record mnist-mlp-graph-agree "${verdict%% *}" - 0 "$out/logs/mnist_mlp_cuda_graph.log" \
        "test accuracy graph $a_graph, eager $a_gpu: |diff| ${verdict#* } (limit 0.01)"
    else
      record mnist-mlp-graph-agree FAIL - 0 "$out/logs/mnist_mlp_cuda_graph.log" "no result line (graph '${a_graph}')"
    fi
    if [[ -n $a_back && -n $a_gpu && $a_back == "$a_gpu" ]]; then
      record mnist-mlp-checkpoint PASS - 0 "$out/logs/mnist_mlp_cuda_to_cpu.log" "GPU checkpoint on the CPU: $a_back"
    else
      record mnist-mlp-checkpoint FAIL - 0 "$out/logs/mnist_mlp_cuda_to_cpu.log" \
        "GPU checkpoint on the CPU: '${a_back}', on the GPU '${a_gpu}'"
    fi
  fi
fi

# ---- benchmarks ---------------------------------------------------------------------------------------------
results=$out/bench_results.txt
: >"$results"
declare -A broken=()
for ((round = 1; round <= rounds; ++round)); do
  for w in mlp_s mlp_l mlp_xl; do
    for fw in tapegrad-cuda tapegrad-graph pytorch-eager pytorch-graph; do
      name="$fw $w r$round"
      log=$out/logs/bench_${fw}_${w}_r$round.log
      if [[ -n ${broken[$fw $w]:-} ]]; then
        record "$name" SKIP - 0 "$log" "failed in round ${broken[$fw $w]}"
        continue
      fi
      if [[ -z $data ]] && ((!dry_run)); then record "$name" SKIP - 0 "$log" "no MNIST"; continue; fi
      case $fw in
        tapegrad-*)
          need "$bench_bin" "$name" "$log" || { broken[$fw $w]=$round; continue; }
          mode=eager
          [[ $fw == tapegrad-graph ]] && mode=graph
          cmd=("$bench_bin" "--workload=$w" "--mode=$mode" "--reps=$reps" --data "$data") ;;
        *)
          if [[ -z $py ]] && ((!dry_run)); then
            record "$name" FAIL - 0 "$out/env.log" "no python with torch"
            broken[$fw $w]=$round
            continue
          fi
          cmd=("${py:-python3}" "$root/bench/gpu_workloads.py" --workload "$w" --mode "${fw#pytorch-}" --reps "$reps" --data "$data") ;;
      esac
      run_step "$name" 120 "$log" "${cmd[@]}"
      rc=$?
      ((rc != 0 && rc != 125)) && broken[$fw $w]=$round
      grep -E '^(tapegrad-cuda|tapegrad-graph|pytorch-eager|pytorch-graph) ' "$log" 2>/dev/null >>"$results"
    done
  done
done

# ---- summary and table --------------------------------------------------------------------------------------
summary=$out/summary.md
{
  echo "# gpu_check $(date -u +%FT%TZ)"
  echo
  gpu_name=$(timeout 20 nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null | head -n 1)
  echo "Machine: ${gpu_name:-no GPU visible (nvidia-smi)}; $(nproc) CPU cores. The script ran $((SECONDS - t_start))s" \
       "(budget ${budget}s); logs under logs/, PyTorch ${py:+via $py}."
  echo
  echo "| step | status | rc | s | log | note |"
  echo "|---|---|---|---|---|---|"
  for i in "${!names[@]}"; do
    echo "| ${names[$i]} | ${statuses[$i]} | ${rcs[$i]} | ${secs[$i]} | ${logs[$i]} | ${notes[$i]} |"
  done
  echo
} >"$summary"
table_py=${py:-python3}
if command -v "$table_py" >/dev/null 2>&1; then
  table_failed=0
  "$table_py" - "$results" "$rounds" "$reps" >>"$summary" <<'EOF' || table_failed=1
import statistics, sys
path, rounds, reps = sys.argv[1], sys.argv[2], sys.argv[3]
runs = {}
for line in open(path):
    parts = line.split()
    if len(parts) < 4 or not parts[3].startswith("rep="):
        continue
    metrics = dict(p.split("=", 1) for p in parts[4:] if "=" in p)
    try:
        runs.setdefault((parts[0], parts[1]), []).append({k: float(v) for k, v in metrics.items()})
    except ValueError:
        continue
fws = ["tapegrad-cuda", "tapegrad-graph", "pytorch-eager", "pytorch-graph"]
def med(fw, w, key):
    vals = [m[key] for m in runs.get((fw, w), []) if key in m]
    return statistics.median(vals) if vals else None
def fmt(v, spec):
    return "n/a" if v is None else format(v, spec)
def ratio(a, b):
    return None if a is None or b is None else a / b
print("## One MNIST epoch on the GPU: tapegrad (CUDA) against PyTorch")
print()
print("Medians over every rep of every round (%s rounds x %s reps planned; n = reps found). "
      "Ratios are epoch-time ratios, tapegrad / PyTorch: above 1, tapegrad is slower. "
      "Data resident on the GPU, drop-last batches, TF32 off. Targets: eager/eager <= 0.33 and "
      "graph/graph <= 1.0 on mlp_s and mlp_l; on mlp_xl the better tapegrad mode within 1.1 of PyTorch eager."
      % (rounds, reps))
print()
print("| workload | tapegrad eager s | tapegrad graph s | pytorch eager s | pytorch graph s | eager/eager "
      "| graph/graph | tg graph / pt eager | test_acc tg eager / tg graph / pt eager / pt graph | n |")
print("|---|---|---|---|---|---|---|---|---|---|")
for w in ["mlp_s", "mlp_l", "mlp_xl"]:
    t = {fw: med(fw, w, "epoch_s") for fw in fws}
    accs = " / ".join(fmt(med(fw, w, "test_acc"), ".4f") for fw in fws)
    n = "/".join(str(len(runs.get((fw, w), []))) for fw in fws)
    print("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
        w, fmt(t["tapegrad-cuda"], ".4g"), fmt(t["tapegrad-graph"], ".4g"), fmt(t["pytorch-eager"], ".4g"),
        fmt(t["pytorch-graph"], ".4g"), fmt(ratio(t["tapegrad-cuda"], t["pytorch-eager"]), ".2f"),
        fmt(ratio(t["tapegrad-graph"], t["pytorch-graph"]), ".2f"),
        fmt(ratio(t["tapegrad-graph"], t["pytorch-eager"]), ".2f"), accs, n))
EOF
  ((table_failed == 0)) || echo "(the table could not be made: $table_py failed; raw lines in bench_results.txt)" >>"$summary"
else
  echo "(no python to make the table; raw lines in bench_results.txt)" >>"$summary"
fi

failed=0 skipped=0
for s in "${statuses[@]}"; do
  [[ $s == FAIL ]] && ((++failed))
  [[ $s == SKIP ]] && ((++skipped))
done
echo >>"$summary"
echo "Result: ${#names[@]} steps, $failed failed, $skipped skipped." >>"$summary"
# On stdout (whose tail is what a remote session sees first): the steps that did not pass, then the table.
echo
echo "== steps that did not pass (all steps: $summary)"
for i in "${!names[@]}"; do
  [[ ${statuses[$i]} == PASS || ${statuses[$i]} == DRY ]] && continue
  echo "  ${statuses[$i]} ${names[$i]} (rc ${rcs[$i]}): ${notes[$i]} [${logs[$i]}]"
done
sed -n '/^## One MNIST epoch/,$p' "$summary"
((dry_run)) && exit 0
((failed == 0 && skipped == 0))
