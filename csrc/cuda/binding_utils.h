// What the ops' entries (csrc/ops/*.cpp) share to launch CUDA kernels: storage types, the current
// stream, launch errors. Included only where ASID_FAST_WITH_CUDA is defined (a CUDA build).
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>

namespace asid {
namespace cuda {

// Calls fn(T{}) with the CUDA storage type of `dtype` (float, __half or __nv_bfloat16).
template <typename F>
void with_cuda_type(at::ScalarType dtype, const char* op, const F& fn) {
  switch (dtype) {
    case at::kFloat:
      return fn(float());
    case at::kHalf:
      return fn(__half());
    case at::kBFloat16:
      return fn(__nv_bfloat16());
    default:
      TORCH_CHECK(false, op, ": the CUDA kernels take float32, float16 or bfloat16, got ", dtype,
                  " (use backend='reference')");
  }
}

// Calls fn(T{}, S{}) with the CUDA storage type T of `dtype` and its accumulation type S (float;
// double for double): the layer norm and depthwise kernels also take float64.
template <typename F>
void with_cuda_types(at::ScalarType dtype, const char* op, const F& fn) {
  if (dtype == at::kDouble) return fn(double(), double());
  with_cuda_type(dtype, op, [&](auto tag) { fn(tag, float()); });
}

// The accumulation dtype of the layer norm and depthwise kernels for maps of `dtype`.
inline at::ScalarType acc_dtype(at::ScalarType dtype) {
  return dtype == at::kDouble ? at::kDouble : at::kFloat;
}

inline cudaStream_t current_stream() { return c10::cuda::getCurrentCUDAStream().stream(); }

inline void check_launch(cudaError_t err, const char* op) {
  TORCH_CHECK(err == cudaSuccess, op, ": CUDA launch failed: ", cudaGetErrorString(err));
}

}  // namespace cuda
}  // namespace asid
