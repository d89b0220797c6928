// Host launchers of the CUDA kernels, torch-free (raw pointers, sizes, strides, a stream), so the
// .cu files compile with nvcc alone; the torch bindings are cuda/*_binding.cpp.
//
// Limits: w*w <= 64 tokens per window, d <= 64, C <= 64. Map dtypes float, __half,
// __nv_bfloat16 (T); arithmetic and channel-attention statistics in float. Reduced gradients
// (dbias, dtemperature) go through a float workspace of one partial per group (deterministic).
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime_api.h>

#include "../common/op_args.h"

namespace asid {
namespace cuda {

constexpr int kMaxTokens = 64;
constexpr int kMaxDim = 64;
constexpr int kMaxChannels = 64;

template <typename T>
cudaError_t window_attention_forward(const WindowFwdArgs<T>& args, cudaStream_t stream);
// dbias_workspace: num_groups * n * n floats, used when args.dbias is set.
template <typename T>
cudaError_t window_attention_backward(const WindowBwdArgs<T>& args, float* dbias_workspace,
                                      cudaStream_t stream);
template <typename T>
cudaError_t shared_window_attention_forward(const SharedFwdArgs<T>& args, cudaStream_t stream);
template <typename T>
cudaError_t shared_window_attention_backward(const SharedBwdArgs<T>& args, cudaStream_t stream);
template <typename T>
cudaError_t channel_attention_forward(const ChannelFwdArgs<T, float>& args, cudaStream_t stream);
// dtemperature_workspace: num_groups floats.
template <typename T>
cudaError_t channel_attention_backward(const ChannelBwdArgs<T, float>& args,
                                       float* dtemperature_workspace, cudaStream_t stream);

}  // namespace cuda
}  // namespace asid
