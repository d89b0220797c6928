#!/usr/bin/env bash
# Compiles every CUDA source under csrc/ with nvcc for sm_90 and sm_80 (object files discarded):
# the CI check that the torch-free kernels build without a GPU or a CUDA build of torch. The
# half-precision defines are the ones torch.utils.cpp_extension passes to nvcc.
# Usage: csrc/check_nvcc.sh   (NVCC=/path/to/nvcc to override; default: $CUDA_HOME/bin/nvcc,
# /usr/local/cuda/bin/nvcc, or nvcc on PATH)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
nvcc="${NVCC:-}"
if [[ -z "$nvcc" ]]; then
  for candidate in "${CUDA_HOME:-}/bin/nvcc" /usr/local/cuda/bin/nvcc "$(command -v nvcc || true)"; do
    if [[ -n "$candidate" && -x "$candidate" ]]; then nvcc="$candidate"; break; fi
  done
fi
if [[ -z "$nvcc" ]]; then
  echo "check_nvcc: nvcc not found (set NVCC or CUDA_HOME)" >&2
  exit 1
fi

out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
mapfile -t sources < <(find "$here" -name '*.cu' | sort)
if [[ ${#sources[@]} -eq 0 ]]; then
  echo "check_nvcc: no .cu files under $here" >&2
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
exit $status
