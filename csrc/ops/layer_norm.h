// LayerNorm over the channels of each pixel (asid_fast/ops/layer_norm.py): kernel arguments and
// the kernels' declarations, torch-free. Inputs are read through their strides (MapView), outputs
// are contiguous. Per-channel arrays (weight, bias) and the CPU's partial-sum rows have `ld` >= C
// elements, zero padded (the CPU kernels pad to whole SIMD vectors; CUDA uses ld = C). T is the
// storage type, S the accumulation type (float for half-precision maps on CUDA, else T).
#pragma once

#include "common/layout.h"
#include "cpu/isa.h"

namespace asid {

// y = (x - mean) * rstd * weight + bias per row; mean, rstd (rows) saved for backward.
template <typename T, typename S = T>
struct LayerNormFwdArgs {
  RowGrid grid;
  int64_t ld = 0;
  MapView<const T> x;
  const T* weight = nullptr;
  const T* bias = nullptr;
  double eps = 1e-5;
  T* y = nullptr;
  S* mean = nullptr;
  S* rstd = nullptr;
};

// dx per row, and the partial sums of dweight and dbias (ld each). CPU: one row of 2 ld per work
// part, dweight then dbias (dbias = dweight + ld), which the kernel ADDS into. CUDA: one row of
// each per block, written.
template <typename T, typename S = T>
struct LayerNormBwdArgs {
  RowGrid grid;
  int64_t ld = 0;
  MapView<const T> x;
  const T* grad_y = nullptr;
  const T* weight = nullptr;
  const S* mean = nullptr;
  const S* rstd = nullptr;
  T* dx = nullptr;
  S* dweight = nullptr;
  S* dbias = nullptr;
};

ASID_DECLARE_CPU_KERNEL(layer_norm_forward, LayerNormFwdArgs)
ASID_DECLARE_CPU_KERNEL(layer_norm_backward, LayerNormBwdArgs)

}  // namespace asid

#if defined(ASID_FAST_WITH_CUDA) || defined(__CUDACC__)
#include <cuda_runtime_api.h>

namespace asid {
namespace cuda {

// Blocks of the backward reduction: the caller allocates partial buffers of this many rows.
int64_t layer_norm_bwd_blocks(const RowGrid& g);
// T = float, double, __half, __nv_bfloat16 with S = float (double for double).
template <typename T, typename S>
cudaError_t layer_norm_forward(const LayerNormFwdArgs<T, S>& a, cudaStream_t stream);
// dweight / dbias: (layer_norm_bwd_blocks, C) partials each, written (not added).
template <typename T, typename S>
cudaError_t layer_norm_backward(const LayerNormBwdArgs<T, S>& a, cudaStream_t stream);

}  // namespace cuda
}  // namespace asid
#endif
