#!/usr/bin/env bash
# One-command GPU check for a lent H100/H200 holding nothing but this repository (issue 18):
#   1. environment report (GPU, driver, torch, triton);
#   2. install the package in place (pip install -e: builds the C++/CUDA extension);
#   3. issue 18's target cases, cheapest first (asid-fast bench, ASID x4):
#      inference 1x3x180x320 fp32 and bf16: reference and fused eager, fused with CUDA graphs;
#      training step 16x3x64x64 fp32: reference and fused (peak memory included);
#   4. GPU time per kernel of one fused x4 call in bf16 and fp32 (bench/profile_model.py);
#   5. core GPU parity: pytest -m cuda on the model, CUDA-graph and precision tests;
#   6. a 1-process torchrun training smoke run with --amp bf16 (2 steps);
#   7. as the budget allows: the training step fp32 of the reference and the fused model, each
#      eager and under torch.compile (default mode, what `asid-fast train --compile` runs);
#      inference fp32 with torch.compile(reference) (its stage's limit caps the compile); the
#      training step with the reduce-overhead compile of the fused model (CUDA graphs for forward
#      and backward), inference fp32 with the reduce-overhead compiles (reference and fused),
#      inference bf16 compiled, the capped max-autotune compile of the reference, the ops suite
#      for channel attention, the shared window attention and LayerNorm, then the rest of the
#      GPU parity tests (pytest -m cuda on tests/; the Triton kernel tests compile many
#      float32/float64 kernels);
#   8. check every benchmark JSON (schema, failed candidates, outputs vs reference), plot, and
#      judge the targets (bench/gpu_targets.py: MET / MISSED / UNMEASURED).
# Every benchmark row carries the kernel launches of one call (torch.profiler: kernels, launch
# calls, top-level operators). Writes the JSON files, bench.png, targets.txt and
# device_check.log to bench/results/<stamp>/ and, when $OUT is set, results.tgz (all of them,
# refreshed after every stage), targets.txt and device_check.log to $OUT. Needs only torch,
# triton, numpy and pillow (pytest for steps 5 and 7, matplotlib for the plot); installs this
# package alone (no dependencies, nothing from an index). Ends within BUDGET_S seconds (default
# 480, eight minutes, which reaches the eager targets, the profile, the core parity tests and
# part of the compiled training steps; BUDGET_S=600 gives those their whole limit): each stage
# has a time limit, cut to what is left; stages that no longer fit are skipped and reported.
# Exit status: 0 all passed; 1 a failure (build, parity, benchmark error or output mismatch);
# 2 incomplete (no pytest, or stages skipped for time) with nothing failed.
# Usage: bash bench/device_check.sh      (PYTHON=python3 BUDGET_S=480 TORCH_CUDA_ARCH_LIST=...)
set -u -o pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
PY=${PYTHON:-python3}
BUDGET_S=${BUDGET_S:-480}
FINAL_RESERVE_S=20  # kept for step 8
START=$(date +%s)
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
RES=bench/results/$STAMP
mkdir -p "$RES"
[ -n "${OUT:-}" ] && mkdir -p "$OUT"
export PYTHONPATH=$REPO${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1 PY RES
FAILED=()
INCOMPLETE=()

elapsed() { echo $(( $(date +%s) - START )); }

# stage NAME LIMIT_S CMD...: run CMD (a program, or a function of this script, run in a child
# bash that has all of them, and the exported variables) under a time limit cut to the budget
# left.
# Returns CMD's status, 124 on timeout, 99 when skipped for lack of time.
stage() {
  local name=$1 limit=$2
  shift 2
  local left=$(( BUDGET_S - FINAL_RESERVE_S - $(elapsed) ))
  (( limit > left )) && limit=$left
  if (( limit < 15 )); then
    echo "=== [$name] SKIPPED: time budget spent ($(elapsed)s elapsed)"
    INCOMPLETE+=("$name (no time left)")
    return 99
  fi
  echo "=== [$name] start at $(elapsed)s, limit ${limit}s: $*"
  local t0 rc
  t0=$(date +%s)
  if [ "$(type -t "$1")" = function ]; then
    timeout --kill-after=10 "$limit" bash -c "$(declare -f); $*"
  else
    timeout --kill-after=10 "$limit" "$@"
  fi
  rc=$?
  (( rc == 124 || rc == 137 )) && echo "=== [$name] TIMED OUT after ${limit}s"
  echo "=== [$name] rc=$rc after $(( $(date +%s) - t0 ))s"
  return $rc
}

publish() {  # refresh $OUT after every stage (a later kill keeps what is there)
  [ -n "${OUT:-}" ] && tar czf "$OUT/results.tgz" -C "$RES" . 2>/dev/null
  return 0
}

env_report() {
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,clocks.max.mem \
    --format=csv 2>&1 || echo "nvidia-smi failed"
  "$PY" - <<'EOF'
import platform, torch
print("python", platform.python_version(), "torch", torch.__version__, "cuda", torch.version.cuda)
try:
    import triton
    print("triton", triton.__version__)
except ImportError:
    print("triton MISSING")
for name in ("pytest", "pytest_benchmark", "matplotlib", "numpy"):
    try:
        __import__(name)
        print(name, "ok")
    except ImportError:
        print(name, "missing")
assert torch.cuda.is_available(), "no CUDA device visible to torch"
p = torch.cuda.get_device_properties(0)
print("device", p.name, f"sm_{p.major}{p.minor}", p.multi_processor_count, "SMs",
      round(p.total_memory / 2**30, 1), "GiB")
EOF
}

build() {
  if [ ! -f setup.py ]; then
    echo "no setup.py: nothing to build"
    return 0
  fi
  if [ -z "${TORCH_CUDA_ARCH_LIST:-}" ]; then
    TORCH_CUDA_ARCH_LIST=$("$PY" -c \
      "import torch; print('%d.%d' % torch.cuda.get_device_capability())") || return 1
    export TORCH_CUDA_ARCH_LIST
  fi
  export MAX_JOBS=${MAX_JOBS:-$(nproc)}
  echo "TORCH_CUDA_ARCH_LIST=$TORCH_CUDA_ARCH_LIST MAX_JOBS=$MAX_JOBS"
  # an editable install builds the extension in place and maps kernels/ to asid_fast.kernels
  "$PY" -m pip install --no-build-isolation --no-deps --no-index -e . || return 1
  "$PY" - <<'EOF'
import torch
import asid_fast._C  # noqa: F401  (fails loudly if the build produced nothing importable)
from asid_fast.ops import available_backends
print("extension imported; backends on cuda:", available_backends("cuda"))
EOF
}

PARITY_NO_PYTEST=3
parity() {  # parity core|rest; returns 3 (PARITY_NO_PYTEST) when pytest is missing
  if ! "$PY" -c "import pytest" 2>/dev/null; then
    echo "!!! pytest is not installed: GPU parity tests NOT run (only the coarse output check of"
    echo "!!! step 6 compares the backends with the reference)"
    return 3
  fi
  local core=(tests/test_model_parity.py tests/test_cuda_graphs.py tests/test_precision.py)
  local which=(-m cuda "${core[@]}") workers=() path
  if [ "$1" = rest ]; then
    which=(-m cuda tests/)
    for path in "${core[@]}"; do which+=(--ignore "$path"); done
  fi
  # with pytest-xdist, tests run in 8 worker processes: a crashing test (a segfault in a kernel)
  # costs that test, not the rest of the run
  "$PY" -c "import xdist" 2>/dev/null && workers=(-n 8)
  "$PY" -m pytest "${which[@]}" -q -rfEs -p no:cacheprovider "${workers[@]}"
  local rc=$?
  if (( rc == 5 )); then
    echo "!!! no test is marked cuda: GPU parity is unverified"
    return 1
  fi
  return $rc
}

check_parity() {  # check_parity NAME RC
  case $2 in
    0 | 99) ;;
    "$PARITY_NO_PYTEST") INCOMPLETE+=("$1 (pytest missing)") ;;
    124 | 137) INCOMPLETE+=("$1 (cut by its time limit)") ;;
    *) FAILED+=("$1") ;;
  esac
}

# training images for the smoke run (../shared does not travel): four views of the example
ddp_data() {
  "$PY" - "$1" <<'EOF'
import sys
from pathlib import Path
from PIL import Image
out = Path(sys.argv[1])
out.mkdir(parents=True, exist_ok=True)
img = Image.open("examples/astronaut.png").convert("RGB")
for i, view in enumerate([img, img.transpose(Image.FLIP_LEFT_RIGHT),
                          img.transpose(Image.ROTATE_90), img.resize((240, 240))]):
    view.save(out / f"view{i}.png")
EOF
}

kernel_profile() {  # GPU time per kernel, one fused x4 inference call each
  local dtype
  for dtype in bf16 fp32; do
    echo "--- $dtype"
    "$PY" bench/profile_model.py --device cuda --dtype "$dtype" --rows 25 \
      | tee "$RES/profile_$dtype.txt" || return 1
  done
}

ddp_smoke() {  # the README's torchrun command on one process, --amp bf16, 2 steps
  ddp_data "$RES/ddp_data" || return 1
  "$PY" -m torch.distributed.run --standalone --nproc_per_node=1 -m asid_fast train \
    --data "$RES/ddp_data" --scale 2 --out "$RES/ddp" --patch 48 --batch 8 --repeat 4 \
    --steps 2 --save-every 1 --log-every 1 --workers 0 --amp bf16
}

run_bench() {  # run_bench NAME LIMIT_S BENCH-OPTIONS...
  local name=$1 limit=$2
  shift 2
  stage "bench $name" "$limit" "$PY" -m asid_fast bench --device cuda \
    --json "$RES/$name.json" "$@"
  local rc=$?
  publish
  case $rc in
    0 | 99) ;;
    124 | 137) INCOMPLETE+=("bench $name (cut by its time limit; finished cases kept)") ;;
    *) FAILED+=("bench $name (rc=$rc)") ;;
  esac
}

main() {
  echo "asid_fast device check $STAMP in $REPO (budget ${BUDGET_S}s)"
  echo "git: $(git rev-parse --short HEAD 2>/dev/null || echo '?') $(git status --porcelain 2>/dev/null | wc -l) changed files"
  if ! stage env 30 env_report; then
    echo "!!! DEVICE CHECK FAILED: no usable CUDA device / torch"
    return 1
  fi
  stage build 120 build
  case $? in
    0 | 99) ;;
    *) FAILED+=("build of the CUDA extension") ;;
  esac
  # issue 18's targets: eager and graph candidates first, each compile in its own capped stage
  # (a stage cut by its limit loses its own cases only)
  local x4=(--model asid --scale 4)
  run_bench x4_infer_fp32 60 "${x4[@]}" --suites inference --compare graphs
  run_bench x4_infer_bf16 40 "${x4[@]}" --suites inference --dtype bf16 --compare graphs
  run_bench x4_train_fp32 40 "${x4[@]}" --suites train_step
  stage "kernel profile" 40 kernel_profile
  case $? in
    0 | 99) ;;
    *) INCOMPLETE+=("kernel profile (failed or cut; the benchmarks are unaffected)") ;;
  esac
  publish
  stage "parity core" 150 parity core
  check_parity "GPU PARITY TESTS (core)" $?
  publish
  stage "ddp amp smoke" 45 ddp_smoke
  case $? in
    0 | 99) ;;
    124 | 137) INCOMPLETE+=("torchrun --amp bf16 smoke run (cut by its time limit)") ;;
    *) FAILED+=("torchrun --amp bf16 smoke run") ;;
  esac
  publish
  # the training step of the reference and of the fused model, each eager and compiled (what
  # `asid-fast train --compile` runs), side by side
  run_bench x4_train_fp32_compile 200 "${x4[@]}" --suites train_step --compare compile
  run_bench x4_infer_fp32_compile 150 "${x4[@]}" --suites inference --compare ref-compile
  run_bench x4_train_fp32_fused_ro 150 "${x4[@]}" --suites train_step --compare fused-compile-ro
  run_bench x4_infer_fp32_ro 90 "${x4[@]}" --suites inference \
    --compare ref-compile-ro,fused-compile-ro
  run_bench x4_infer_bf16_compile 80 "${x4[@]}" --suites inference --dtype bf16 \
    --compare ref-compile
  run_bench x4_infer_fp32_max 120 "${x4[@]}" --suites inference --compare ref-compile-max
  # the per-op evidence behind "auto"'s channel-attention order, and the next largest kernels
  run_bench ops_bf16 40 --suites ops --dtype bf16 --ops channel_attention,shared_window_attention
  run_bench ops_fp32 40 --suites ops --ops channel_attention,layer_norm
  stage "parity rest" 200 parity rest
  check_parity "GPU PARITY TESTS (all other cuda tests)" $?

  local jsons=("$RES"/*.json) plot=()
  "$PY" -c "import matplotlib" 2>/dev/null && plot=(--plot "$RES/bench.png")
  if [ -e "${jsons[0]}" ]; then
    echo "=== [check] at $(elapsed)s"
    timeout 60 "$PY" -m asid_fast.tools.bench_report "${plot[@]}" "${jsons[@]}" \
      || FAILED+=("benchmark check (errors or outputs differing from the reference)")
    "$PY" bench/gpu_targets.py "${jsons[@]}" | tee "$RES/targets.txt"
    [ -n "${OUT:-}" ] && cp -f "$RES/targets.txt" "$OUT/"
  else
    FAILED+=("no benchmark produced a JSON file")
  fi
  publish

  echo "=== summary after $(elapsed)s: results in $RES${OUT:+ and $OUT}"
  local item
  for item in "${INCOMPLETE[@]}"; do echo "INCOMPLETE: $item"; done
  for item in "${FAILED[@]}"; do echo "FAILED: $item"; done
  if (( ${#FAILED[@]} )); then
    echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"
    echo "!!! DEVICE CHECK FAILED: ${FAILED[*]}"
    echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"
    return 1
  fi
  if (( ${#INCOMPLETE[@]} )); then
    echo "DEVICE CHECK INCOMPLETE (nothing failed)"
    return 2
  fi
  echo "DEVICE CHECK PASSED"
}

main 2>&1 | tee "$RES/device_check.log" ${OUT:+"$OUT/device_check.log"}
exit "${PIPESTATUS[0]}"
