#!/usr/bin/env bash
# The CI check that the CUDA side builds without a GPU or a CUDA build of torch:
#   1. every CUDA source under csrc/ compiled with nvcc for sm_90 and sm_80 (objects discarded;
#      the half-precision defines are the ones torch.utils.cpp_extension passes to nvcc);
#   2. the ops' entries (csrc/ops/*.cpp) type-checked with ASID_FAST_WITH_CUDA defined, against
#      the installed torch's headers and the CUDA runtime's (what a CUDA build compiles there).
# Usage: csrc/check_cuda.sh   (NVCC=/path/to/nvcc to override; default: $CUDA_HOME/bin/nvcc,
# /usr/local/cuda/bin/nvcc, or nvcc on PATH; PYTHON=python with torch, default .venv/bin/python)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
nvcc="${NVCC:-}"
if [[ -z "$nvcc" ]]; then
  for candidate in "${CUDA_HOME:-}/bin/nvcc" /usr/local/cuda/bin/nvcc "$(command -v nvcc || true)"; do
    if [[ -n "$candidate" && -x "$candidate" ]]; then nvcc="$candidate"; break; fi
  done
fi
if [[ -z "$nvcc" ]]; then
  echo "check_cuda: nvcc not found (set NVCC or CUDA_HOME)" >&2
  exit 1
fi

out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
mapfile -t sources < <(find "$here" -name '*.cu' | sort)
if [[ ${#sources[@]} -eq 0 ]]; then
  echo "check_cuda: no .cu files under $here" >&2
  exit 1
fi
# Each compile runs as a background job, at most JOBS (default: the CPU count) at a time; the
# results are printed in order once all have ended.
jobs_max="${JOBS:-$(nproc)}"
names=()
launch() {  # launch NAME COMMAND...: run COMMAND in the background, its output kept for NAME
  local i=${#names[@]}
  names+=("$1")
  shift
  ( "$@" > "$out/$i.log" 2>&1 && touch "$out/$i.ok" ) &
  while (( $(jobs -rp | wc -l) >= jobs_max )); do wait -n || true; done
}

for src in "${sources[@]}"; do
  launch "${src#"$here"/}" "$nvcc" -c -std=c++17 -O3 -I"$here" --expt-relaxed-constexpr \
      -D__CUDA_NO_HALF_OPERATORS__ -D__CUDA_NO_HALF_CONVERSIONS__ \
      -D__CUDA_NO_BFLOAT16_CONVERSIONS__ -D__CUDA_NO_HALF2_OPERATORS__ \
      -gencode arch=compute_90,code=sm_90 -gencode arch=compute_80,code=sm_80 \
      "$src" -o "$out/$(basename "$src").o"
done

python="${PYTHON:-$here/../.venv/bin/python}"
cuda_include="$(dirname "$(dirname "$nvcc")")/include"
mapfile -t torch_includes < <("$python" -c \
  "from torch.utils.cpp_extension import include_paths; print(*include_paths(), sep='\n')")
mapfile -t entries < <(find "$here/ops" -name '*.cpp' | sort)
python_include="$("$python" -c "import sysconfig; print(sysconfig.get_paths()['include'])")"
for src in "${entries[@]}"; do
  # C10_CUDA_NO_CMAKE_CONFIGURE_FILE: the CPU wheel lacks c10's generated CUDA build macros
  launch "${src#"$here"/} (host side, with CUDA)" "${CXX:-g++}" -std=c++20 -fsyntax-only \
      -DASID_FAST_WITH_CUDA -DC10_CUDA_NO_CMAKE_CONFIGURE_FILE -I"$here" \
      "${torch_includes[@]/#/-I}" -I"$cuda_include" -I"$python_include" "$src"
done
wait

status=0
for i in "${!names[@]}"; do
  if [[ -e "$out/$i.ok" ]]; then
    echo "ok      ${names[i]}"
  else
    echo "FAILED  ${names[i]}" >&2
    cat "$out/$i.log" >&2
    status=1
  fi
done
exit $status
