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
status=0
for src in "${sources[@]}"; do
  if "$nvcc" -c -std=c++17 -O3 -I"$here" --expt-relaxed-constexpr \
      -D__CUDA_NO_HALF_OPERATORS__ -D__CUDA_NO_HALF_CONVERSIONS__ \
      -D__CUDA_NO_BFLOAT16_CONVERSIONS__ -D__CUDA_NO_HALF2_OPERATORS__ \
      -gencode arch=compute_90,code=sm_90 -gencode arch=compute_80,code=sm_80 \
      "$src" -o "$out/$(basename "$src").o"; then
    echo "ok      ${src#"$here"/}"
  else
    echo "FAILED  ${src#"$here"/}" >&2
    status=1
  fi
done

python="${PYTHON:-$here/../.venv/bin/python}"
cuda_include="$(dirname "$(dirname "$nvcc")")/include"
mapfile -t torch_includes < <("$python" -c \
  "from torch.utils.cpp_extension import include_paths; print(*include_paths(), sep='\n')")
mapfile -t entries < <(find "$here/ops" -name '*.cpp' | sort)
for src in "${entries[@]}"; do
  # C10_CUDA_NO_CMAKE_CONFIGURE_FILE: the CPU wheel lacks c10's generated CUDA build macros
  if "${CXX:-g++}" -std=c++20 -fsyntax-only -DASID_FAST_WITH_CUDA \
      -DC10_CUDA_NO_CMAKE_CONFIGURE_FILE -I"$here" "${torch_includes[@]/#/-I}" \
      -I"$cuda_include" $("$python" -c "import sysconfig; print('-I' + sysconfig.get_paths()['include'])") \
      "$src"; then
    echo "ok      ${src#"$here"/} (host side, with CUDA)"
  else
    echo "FAILED  ${src#"$here"/} (host side, with CUDA)" >&2
    status=1
  fi
done
exit $status
