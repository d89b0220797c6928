// Shared pieces of the torch bindings of the CUDA launchers (compiled only with CUDA torch).
#pragma once

#include <ATen/ATen.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "launchers.h"

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

inline cudaStream_t current_stream() { return at::cuda::getCurrentCUDAStream().stream(); }

inline void check_launch(cudaError_t err, const char* op) {
  TORCH_CHECK(err == cudaSuccess, op, ": CUDA launch failed: ", cudaGetErrorString(err));
}

}  // namespace cuda
}  // namespace asid
