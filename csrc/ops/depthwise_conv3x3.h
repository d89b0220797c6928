// Depthwise 3x3 convolution with an epilogue (asid_fast/ops/depthwise_conv3x3.py): kernel
// arguments and the kernels' declarations, torch-free. Inputs are read through their strides,
// outputs are contiguous; taps, bias and the CPU's partial-sum rows have `ld` >= C elements per
// row, zero padded (CPU: whole SIMD vectors; CUDA: ld = C). T is the storage type, S the
// accumulation type (float for half-precision maps on CUDA, else T).
#pragma once

#include "common/layout.h"
#include "cpu/isa.h"

namespace asid {

// What follows the convolution: nothing, GELU, or GELU(first half) * second half.
enum class Epilogue : int { kNone = 0, kGelu = 1, kGate = 2 };

// pre[c] = bias[c] + sum_t x[pixel + offset(t), c] taps[t][c] with zero padding 1 and taps
// (9, ld) tap-major (t = 3 dy + dx), then the epilogue into out (B, H, W, C or C/2).
template <typename T>
struct DwconvFwdArgs {
  RowGrid grid;  // channels = C of x
  int64_t ld = 0;
  MapView<const T> x;
  const T* taps = nullptr;
  const T* bias = nullptr;  // (C) or null
  Epilogue epilogue = Epilogue::kNone;
  T* out = nullptr;
};

// Backward: grad_pre = d(epilogue)/d(pre) * grad_out (recomputing pre), then
// dx = conv(grad_pre, flipped taps), and the partial sums of dtaps (9, ld) and dbias (ld). CPU:
// one row of 10 ld per work part, the 9 taps then the bias (dbias = dtaps + 9 ld), which the
// kernel ADDS into. CUDA: one per block, written. The CPU kernel makes grad_pre row by row (grad_pre unused); the CUDA
// kernels write it to a map first.
template <typename T, typename S = T>
struct DwconvBwdArgs {
  DwconvFwdArgs<T> fwd;         // x, taps, bias, epilogue of the forward (out unused)
  const T* grad_out = nullptr;  // contiguous (B, H, W, C or C/2)
  T* grad_pre = nullptr;        // CUDA: contiguous (B, H, W, C); equals grad_out for kNone
  const T* flipped_taps = nullptr;  // taps[8 - t], (9, ld)
  T* dx = nullptr;
  S* dtaps = nullptr;
  S* dbias = nullptr;
};

ASID_DECLARE_CPU_KERNEL(dwconv_forward, DwconvFwdArgs)
ASID_DECLARE_CPU_KERNEL(dwconv_backward, DwconvBwdArgs)

}  // namespace asid

#if defined(ASID_FAST_WITH_CUDA) || defined(__CUDACC__)
#include <cuda_runtime_api.h>

namespace asid {
namespace cuda {

// Blocks of the backward reduction: the caller allocates partial buffers of this many rows.
int64_t dwconv_bwd_blocks(const RowGrid& g);
// T = float, double, __half, __nv_bfloat16 with S = float (double for double).
template <typename T, typename S>
cudaError_t dwconv_forward(const DwconvFwdArgs<T>& a, cudaStream_t stream);
// grad_pre for the GELU / gate epilogues, then dx; dtaps (blocks, 9, C) and dbias (blocks, C)
// partials are written (not added).
template <typename T, typename S>
cudaError_t dwconv_backward(const DwconvBwdArgs<T, S>& a, cudaStream_t stream);

}  // namespace cuda
}  // namespace asid
#endif
