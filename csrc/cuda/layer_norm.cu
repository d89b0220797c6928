// CUDA kernels of LayerNorm over the channels of each pixel (ops/layer_norm.h), torch-free: raw
// pointers, sizes, strides and a stream. Arithmetic in S = float for float / half / bfloat16
// maps, double for double.
#include "cuda/accumulate.cuh"
#include "ops/layer_norm.h"

namespace asid {
namespace cuda {
namespace {

constexpr int kNormThreads = 256;  // 8 warps, one pixel row per warp at a time

template <typename T, typename S>
__global__ void layer_norm_fwd_kernel(LayerNormFwdArgs<T, S> a) {
  const int lane = threadIdx.x % kWarp;
  const int64_t C = a.grid.channels, warps = int64_t(gridDim.x) * (blockDim.x / kWarp);
  for (int64_t r = int64_t(blockIdx.x) * (blockDim.x / kWarp) + threadIdx.x / kWarp;
       r < a.grid.rows(); r += warps) {
    const T* x = a.grid.row(a.x, r);
    S s = 0;
    for (int64_t c = lane; c < C; c += kWarp) s += to_acc(x[c]);
    const S mean = warp_sum(s) / S(C);
    S q = 0;
    for (int64_t c = lane; c < C; c += kWarp) {
      const S d = to_acc(x[c]) - mean;
      q += d * d;
    }
    const S rstd = S(1) / sqrt(warp_sum(q) / S(C) + S(a.eps));
    for (int64_t c = lane; c < C; c += kWarp)
      a.y[r * C + c] = from_acc<T>((to_acc(x[c]) - mean) * rstd * to_acc(a.weight[c]) +
                                   to_acc(a.bias[c]));
    if (lane == 0) {
      a.mean[r] = mean;
      a.rstd[r] = rstd;
    }
  }
}

// dx per row (one warp per row); each block sums its rows' g xhat and g per channel in shared
// memory (one slice per warp) and writes one partial row of dweight and dbias.
template <typename T, typename S>
__global__ void layer_norm_bwd_kernel(LayerNormBwdArgs<T, S> a) {
  extern __shared__ unsigned char smem_raw[];
  S* acc = reinterpret_cast<S*>(smem_raw);  // (warps, 2, C)
  const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp;
  const int nwarps = blockDim.x / kWarp;
  const int64_t C = a.grid.channels;
  S* my = acc + warp * 2 * C;
  for (int64_t c = lane; c < 2 * C; c += kWarp) my[c] = 0;
  __syncwarp();
  for (int64_t r = int64_t(blockIdx.x) * nwarps + warp; r < a.grid.rows();
       r += int64_t(gridDim.x) * nwarps) {
    const T* x = a.grid.row(a.x, r);
    const T* g = a.grad_y + r * C;
    const S mean = a.mean[r], rstd = a.rstd[r];
    S s1 = 0, s2 = 0;
    for (int64_t c = lane; c < C; c += kWarp) {
      const S gw = to_acc(g[c]) * to_acc(a.weight[c]), xh = (to_acc(x[c]) - mean) * rstd;
      s1 += gw;
      s2 += gw * xh;
    }
    s1 = warp_sum(s1) / S(C);
    s2 = warp_sum(s2) / S(C);
    for (int64_t c = lane; c < C; c += kWarp) {
      const S gv = to_acc(g[c]), xh = (to_acc(x[c]) - mean) * rstd;
      a.dx[r * C + c] = from_acc<T>(rstd * (gv * to_acc(a.weight[c]) - s1 - xh * s2));
      my[c] += gv * xh;
      my[C + c] += gv;
    }
  }
  __syncthreads();
  for (int64_t c = threadIdx.x; c < 2 * C; c += blockDim.x) {
    S t = 0;
    for (int w = 0; w < nwarps; ++w) t += acc[w * 2 * C + c];
    (c < C ? a.dweight + blockIdx.x * C + c : a.dbias + blockIdx.x * C + (c - C))[0] = t;
  }
}

}  // namespace

int64_t layer_norm_bwd_blocks(const RowGrid& g) {
  return std::max<int64_t>(1, std::min<int64_t>(g.rows() / 64, kMaxBlocks));
}

template <typename T, typename S>
cudaError_t layer_norm_forward(const LayerNormFwdArgs<T, S>& a, cudaStream_t stream) {
  const int64_t blocks = blocks_for(a.grid.rows(), kNormThreads / kWarp);
  layer_norm_fwd_kernel<T, S><<<blocks, kNormThreads, 0, stream>>>(a);
  return cudaGetLastError();
}

template <typename T, typename S>
cudaError_t layer_norm_backward(const LayerNormBwdArgs<T, S>& a, cudaStream_t stream) {
  const size_t smem = sizeof(S) * 2 * a.grid.channels * (kNormThreads / kWarp);
  layer_norm_bwd_kernel<T, S>
      <<<layer_norm_bwd_blocks(a.grid), kNormThreads, smem, stream>>>(a);
  return cudaGetLastError();
}

#define ASID_INSTANTIATE(T, S)                                                                  \
  template cudaError_t layer_norm_forward<T, S>(const LayerNormFwdArgs<T, S>&, cudaStream_t);  \
  template cudaError_t layer_norm_backward<T, S>(const LayerNormBwdArgs<T, S>&, cudaStream_t);

ASID_INSTANTIATE(float, float)
ASID_INSTANTIATE(double, double)
ASID_INSTANTIATE(__half, float)
ASID_INSTANTIATE(__nv_bfloat16, float)

}  // namespace cuda
}  // namespace asid
