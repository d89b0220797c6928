// Device helpers shared by the CUDA kernels (torch-free): dtype conversion, warp reductions,
// loading a pixel group into shared memory, dynamic shared-memory opt-in.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include "common/layout.h"

namespace asid {
namespace cuda {

constexpr unsigned kFullMask = 0xffffffffu;

__device__ __forceinline__ float to_float(float x) { return x; }
__device__ __forceinline__ float to_float(__half x) { return __half2float(x); }
__device__ __forceinline__ float to_float(__nv_bfloat16 x) { return __bfloat162float(x); }

template <typename T>
__device__ __forceinline__ T from_float(float x);
template <>
__device__ __forceinline__ float from_float<float>(float x) {
  return x;
}
template <>
__device__ __forceinline__ __half from_float<__half>(float x) {
  return __float2half_rn(x);
}
template <>
__device__ __forceinline__ __nv_bfloat16 from_float<__nv_bfloat16>(float x) {
  return __float2bfloat16_rn(x);
}

__device__ __forceinline__ float warp_sum(float v) {
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(kFullMask, v, offset);
  return v;
}

__device__ __forceinline__ float warp_max(float v) {
  for (int offset = 16; offset > 0; offset >>= 1)
    v = fmaxf(v, __shfl_xor_sync(kFullMask, v, offset));
  return v;
}

// Pointer to the channels of member m of group g.
template <typename P>
__device__ __forceinline__ P* member_pixel(const MapView<P>& map, const GroupLayout& l, int64_t g,
                                           int m) {
  const int mw = static_cast<int>(l.members_w);
  const int mi = m / mw;
  return map.data + group_origin(map, l, g) + member_offset(map, l, mi, m - mi * mw);
}

// tile[m * ld + c] = scale * x[c] for members m0 <= m < m0 + count of group g, c < d (as float),
// by the whole block; consecutive threads read consecutive channels of a pixel.
template <typename T>
__device__ __forceinline__ void load_members(const MapView<const T>& map, const GroupLayout& l,
                                             int64_t g, int m0, int count, int d, float scale,
                                             float* tile, int ld) {
  for (int e = threadIdx.x; e < count * d; e += blockDim.x) {
    const int m = e / d, c = e - m * d;
    tile[m * ld + c] = scale * to_float(member_pixel(map, l, g, m0 + m)[c]);
  }
}

// Kernels needing more than the default 48 KiB of dynamic shared memory must say so first.
template <typename Kernel>
inline cudaError_t allow_shared_memory(Kernel kernel, size_t bytes) {
  if (bytes <= 48 * 1024) return cudaSuccess;
  return cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                              static_cast<int>(bytes));
}

// Launches kernel(args...) with one block of `threads` per group and shared_floats floats of
// dynamic shared memory.
template <typename... Params, typename... Args>
inline cudaError_t launch_per_group(void (*kernel)(Params...), int threads, int64_t groups,
                                    size_t shared_floats, cudaStream_t stream, Args... args) {
  const size_t bytes = shared_floats * sizeof(float);
  const cudaError_t err = allow_shared_memory(kernel, bytes);
  if (err != cudaSuccess || groups == 0) return err;
  kernel<<<static_cast<unsigned>(groups), threads, bytes, stream>>>(args...);
  return cudaGetLastError();
}

// Sums `count` float rows of length `size` (row stride `size`) into out (dtype T), one thread per
// element: the deterministic reduction of per-group partials (dbias, dtemperature).
template <typename T>
__global__ void sum_rows_kernel(const float* rows, int64_t count, int size, T* out) {
  const int e = blockIdx.x * blockDim.x + threadIdx.x;
  if (e >= size) return;
  float acc = 0.0f;
  for (int64_t r = 0; r < count; ++r) acc += rows[r * size + e];
  out[e] = from_float<T>(acc);
}

template <typename T>
inline cudaError_t sum_rows(const float* rows, int64_t count, int size, T* out,
                            cudaStream_t stream) {
  const int threads = 256;
  const int blocks = (size + threads - 1) / threads;
  sum_rows_kernel<T><<<blocks, threads, 0, stream>>>(rows, count, size, out);
  return cudaGetLastError();
}

}  // namespace cuda
}  // namespace asid
