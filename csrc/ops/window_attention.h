// Window attention and the shared-attention apply (asid_fast/ops/window_attention.py): kernel
// arguments and the kernels' declarations, torch-free (shared by the entry, the CPU kernels and
// the CUDA kernels). Maps are channels-last with a unit channel stride (common/layout.h);
// matrices are contiguous. T is the maps' storage type.
#pragma once

#include "common/layout.h"
#include "cpu/isa.h"

namespace asid {

// out = softmax(scale q k^T + bias) v per window; attn (G, n, n) is the softmax.
template <typename T>
struct WindowFwdArgs {
  GroupLayout layout;
  int64_t dim = 0;
  MapView<const T> q, k, v;
  const T* bias = nullptr;  // (n, n) or null
  double scale = 1.0;
  MapView<T> out;
  T* attn = nullptr;
};

// Gradients of WindowFwdArgs; grad_attn (G, n, n) may be null. dbias, when not null, points at
// the (n, n) partial sums over windows: one per work part on the CPU (work_queue.h), the total
// on CUDA.
template <typename T>
struct WindowBwdArgs {
  GroupLayout layout;
  int64_t dim = 0;
  MapView<const T> q, k, v, grad_out;
  const T* attn = nullptr;
  const T* grad_attn = nullptr;
  double scale = 1.0;
  MapView<T> dq, dk, dv;
  T* dbias = nullptr;
};

// out = attn v per window, attn (G, n, n) given.
template <typename T>
struct SharedFwdArgs {
  GroupLayout layout;
  int64_t dim = 0;
  const T* attn = nullptr;
  MapView<const T> v;
  MapView<T> out;
};

// dattn = dO v^T, dv = attn^T dO.
template <typename T>
struct SharedBwdArgs {
  GroupLayout layout;
  int64_t dim = 0;
  const T* attn = nullptr;
  MapView<const T> v, grad_out;
  T* dattn = nullptr;  // (G, n, n)
  MapView<T> dv;
};

ASID_DECLARE_CPU_KERNEL(window_forward, WindowFwdArgs)
ASID_DECLARE_CPU_KERNEL(window_backward, WindowBwdArgs)
ASID_DECLARE_CPU_KERNEL(shared_forward, SharedFwdArgs)
ASID_DECLARE_CPU_KERNEL(shared_backward, SharedBwdArgs)

}  // namespace asid

#if defined(ASID_FAST_WITH_CUDA) || defined(__CUDACC__)
#include <cuda_runtime_api.h>

namespace asid {
namespace cuda {

// Limits of the CUDA kernels (one window per block): asid_fast/ops/window_attention.py states them
// too, so "auto" passes larger windows to another backend.
constexpr int kMaxTokens = 64;
constexpr int kMaxDim = 64;

// T: float, __half or __nv_bfloat16; arithmetic in float.
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

}  // namespace cuda
}  // namespace asid
#endif
