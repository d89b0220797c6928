// Channel attention (asid_fast/ops/channel_attention.py): kernel arguments and the kernels'
// declarations, torch-free. T is the maps' storage type, S that of the statistics (attn, rq,
// rk), float for half-precision maps on CUDA.
#pragma once

#include "common/layout.h"
#include "cpu/isa.h"

namespace asid {

constexpr double kNormEps = 1e-12;  // F.normalize's eps in the reference

// Per group of n pixels: qn, kn = q, k channel rows (length n) scaled by rq, rk =
// 1 / max(||row||, 1e-12); attn = softmax(temperature qn kn^T) (C x C); out = attn v.
template <typename T, typename S = T>
struct ChannelFwdArgs {
  GroupLayout layout;
  int64_t channels = 0;
  MapView<const T> q, k, v;
  const T* temperature = nullptr;  // one element
  MapView<T> out;
  S* attn = nullptr;  // (G, C, C)
  S* rq = nullptr;    // (G, C)
  S* rk = nullptr;    // (G, C)
  bool bf16_products = false;  // the CPU kernel's two products with bf16 inputs (float32 sums)
};

// Gradients of ChannelFwdArgs; dtemperature points at one partial per CPU work part (the total
// on CUDA).
template <typename T, typename S = T>
struct ChannelBwdArgs {
  GroupLayout layout;
  int64_t channels = 0;
  MapView<const T> q, k, v, grad_out;
  const T* temperature = nullptr;
  const S* attn = nullptr;
  const S* rq = nullptr;
  const S* rk = nullptr;
  MapView<T> dq, dk, dv;
  T* dtemperature = nullptr;
};

ASID_DECLARE_CPU_KERNEL(channel_forward, ChannelFwdArgs)
ASID_DECLARE_CPU_KERNEL(channel_backward, ChannelBwdArgs)

}  // namespace asid

#if defined(ASID_FAST_WITH_CUDA) || defined(__CUDACC__)
#include <cuda_runtime_api.h>

namespace asid {
namespace cuda {

constexpr int kMaxChannels = 64;

template <typename T>
cudaError_t channel_attention_forward(const ChannelFwdArgs<T, float>& args, cudaStream_t stream);
// dtemperature_workspace: num_groups floats.
template <typename T>
cudaError_t channel_attention_backward(const ChannelBwdArgs<T, float>& args,
                                       float* dtemperature_workspace, cudaStream_t stream);

}  // namespace cuda
}  // namespace asid
#endif
