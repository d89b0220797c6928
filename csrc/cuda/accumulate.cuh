// Device helpers of the layer norm and depthwise convolution kernels (torch-free): conversion
// between the storage type T and the accumulation type S (float, or double for double maps),
// warp sums and the normal CDF in S, and grid sizes.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>

namespace asid {
namespace cuda {

constexpr int kWarp = 32;
constexpr int64_t kMaxBlocks = 1024;

__device__ __forceinline__ float to_acc(__half v) { return __half2float(v); }
__device__ __forceinline__ float to_acc(__nv_bfloat16 v) { return __bfloat162float(v); }
__device__ __forceinline__ float to_acc(float v) { return v; }
__device__ __forceinline__ double to_acc(double v) { return v; }

template <typename T>
__device__ __forceinline__ T from_acc(float v);
template <>
__device__ __forceinline__ __half from_acc<__half>(float v) { return __float2half_rn(v); }
template <>
__device__ __forceinline__ __nv_bfloat16 from_acc<__nv_bfloat16>(float v) {
  return __float2bfloat16_rn(v);
}
template <>
__device__ __forceinline__ float from_acc<float>(float v) { return v; }
template <typename T>
__device__ __forceinline__ T from_acc(double v) { return v; }

__device__ __forceinline__ float erf_(float v) { return erff(v); }
__device__ __forceinline__ double erf_(double v) { return erf(v); }
__device__ __forceinline__ float exp_(float v) { return expf(v); }
__device__ __forceinline__ double exp_(double v) { return exp(v); }

template <typename S>
__device__ __forceinline__ S warp_sum(S v) {
  for (int o = kWarp / 2; o > 0; o /= 2) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// Phi(v) and phi(v) of the standard normal distribution.
template <typename S>
__device__ __forceinline__ S normal_cdf(S v, S* pdf) {
  if (pdf) *pdf = exp_(S(-0.5) * v * v) * S(0.3989422804014327);
  return S(0.5) * (S(1) + erf_(v * S(0.7071067811865476)));
}

// Blocks for `work` items at `threads` per block (grid-stride kernels), at most 65535.
inline int64_t blocks_for(int64_t work, int threads) {
  return std::max<int64_t>(1, std::min<int64_t>((work + threads - 1) / threads, 65535));
}

}  // namespace cuda
}  // namespace asid
