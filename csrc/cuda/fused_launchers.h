// Torch-free launchers of the fused CUDA kernels (LayerNorm over channels, depthwise 3x3 conv with
// epilogue; arguments in common/fused_args.h). Instantiated in fused_kernels.cu for
// T = float, double, __half, __nv_bfloat16 with S = float (double for double). Each returns the
// launch error. Per-channel arrays use ld = C (no padding on the GPU).
#pragma once

#include <cuda_runtime.h>

#include "../common/fused_args.h"

namespace asid {
namespace cuda {

// Blocks of the backward reductions: the callers allocate partial buffers of this many rows.
int64_t layer_norm_bwd_blocks(const RowGrid& g);
int64_t dwconv_bwd_blocks(const RowGrid& g);

template <typename T, typename S>
cudaError_t layer_norm_forward(const LayerNormFwdArgs<T, S>& a, cudaStream_t stream);
// dweight / dbias: (layer_norm_bwd_blocks, C) partials each, written (not added).
template <typename T, typename S>
cudaError_t layer_norm_backward(const LayerNormBwdArgs<T, S>& a, cudaStream_t stream);

template <typename T, typename S>
cudaError_t dwconv_forward(const DwconvFwdArgs<T>& a, cudaStream_t stream);
// grad_pre for the GELU / gate epilogues, then dx; dtaps (blocks, 9, C) and dbias (blocks, C)
// partials are written (not added).
template <typename T, typename S>
cudaError_t dwconv_backward(const DwconvBwdArgs<T, S>& a, cudaStream_t stream);

}  // namespace cuda
}  // namespace asid
