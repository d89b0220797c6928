// CUDA kernels of the fused ops (LayerNorm over channels, depthwise 3x3 conv with epilogue),
// torch-free: raw pointers, sizes, strides and a stream (see fused_launchers.h). Arithmetic in
// S = float for float / half / bfloat16 maps, double for double.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>

#include "fused_launchers.h"

namespace asid {
namespace cuda {
namespace {

constexpr int kWarp = 32;
constexpr int kNormThreads = 256;  // 8 warps, one pixel row per warp at a time
constexpr int kConvThreads = 256;
constexpr int kTapRows = 8;  // pixel lanes per block of the dtaps reduction (x 32 channels)
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

// ---- LayerNorm --------------------------------------------------------------------------------

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

// ---- depthwise 3x3 convolution ------------------------------------------------------------

// bias[c] + sum_t x[pixel + offset(t), c] taps[t][c] at pixel (b, h, w).
template <typename T, typename S>
__device__ __forceinline__ S conv_at(const DwconvFwdArgs<T>& a, int64_t b, int64_t h, int64_t w,
                                     int64_t c) {
  S acc = a.bias ? to_acc(a.bias[c]) : S(0);
  for (int dy = 0; dy < 3; ++dy) {
    const int64_t y = h + dy - 1;
    if (y < 0 || y >= a.grid.height) continue;
    for (int dx = 0; dx < 3; ++dx) {
      const int64_t xx = w + dx - 1;
      if (xx < 0 || xx >= a.grid.width) continue;
      acc += to_acc(a.x.data[b * a.x.sb + y * a.x.sh + xx * a.x.sw + c]) *
             to_acc(a.taps[(3 * dy + dx) * a.ld + c]);
    }
  }
  return acc;
}

// One thread per output element (pixel, channel < cout).
template <typename T, typename S>
__global__ void dwconv_fwd_kernel(DwconvFwdArgs<T> a) {
  const RowGrid& g = a.grid;
  const bool gate = a.epilogue == Epilogue::kGate;
  const int64_t cout = gate ? g.channels / 2 : g.channels, total = g.rows() * cout;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t c = i % cout, p = i / cout, w = p % g.width, bh = p / g.width;
    S v = conv_at<T, S>(a, bh / g.height, bh % g.height, w, c);
    if (a.epilogue != Epilogue::kNone) v *= normal_cdf<S>(v, nullptr);
    if (gate) v *= conv_at<T, S>(a, bh / g.height, bh % g.height, w, c + cout);
    a.out[i] = from_acc<T>(v);
  }
}

// grad_pre of the GELU / gate epilogue, one thread per (pixel, channel < cout).
template <typename T, typename S>
__global__ void dwconv_grad_pre_kernel(DwconvBwdArgs<T, S> a) {
  const DwconvFwdArgs<T>& f = a.fwd;
  const RowGrid& g = f.grid;
  const bool gate = f.epilogue == Epilogue::kGate;
  const int64_t C = g.channels, cout = gate ? C / 2 : C, total = g.rows() * cout;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t c = i % cout, p = i / cout, w = p % g.width, bh = p / g.width;
    const int64_t b = bh / g.height, h = bh % g.height;
    const S pre = conv_at<T, S>(f, b, h, w, c), go = to_acc(a.grad_out[i]);
    S pdf;
    const S cdf = normal_cdf<S>(pre, &pdf), d = cdf + pre * pdf;
    if (!gate) {
      a.grad_pre[p * C + c] = from_acc<T>(go * d);
      continue;
    }
    const S second = conv_at<T, S>(f, b, h, w, c + cout);
    a.grad_pre[p * C + c] = from_acc<T>(go * second * d);
    a.grad_pre[p * C + cout + c] = from_acc<T>(go * pre * cdf);
  }
}

// Partials of dtaps (9 per channel) and dbias: block (32 channels) x (kTapRows pixel lanes).
template <typename T, typename S>
__global__ void dwconv_dtaps_kernel(DwconvBwdArgs<T, S> a) {
  __shared__ S red[kTapRows][10][kWarp];
  const DwconvFwdArgs<T>& f = a.fwd;
  const RowGrid& g = f.grid;
  const int64_t C = g.channels, c = int64_t(blockIdx.y) * kWarp + threadIdx.x;
  S acc[10] = {};
  if (c < C) {
    for (int64_t p = int64_t(blockIdx.x) * kTapRows + threadIdx.y; p < g.rows();
         p += int64_t(gridDim.x) * kTapRows) {
      const int64_t w = p % g.width, bh = p / g.width, b = bh / g.height, h = bh % g.height;
      const S gv = to_acc(a.grad_pre[p * C + c]);
      acc[9] += gv;
      for (int t = 0; t < 9; ++t) {
        const int64_t y = h + t / 3 - 1, xx = w + t % 3 - 1;
        if (y >= 0 && y < g.height && xx >= 0 && xx < g.width)
          acc[t] += gv * to_acc(f.x.data[b * f.x.sb + y * f.x.sh + xx * f.x.sw + c]);
      }
    }
  }
  for (int t = 0; t < 10; ++t) red[threadIdx.y][t][threadIdx.x] = acc[t];
  __syncthreads();
  if (threadIdx.y != 0 || c >= C) return;
  for (int t = 0; t < 10; ++t) {
    S s = 0;
    for (int r = 0; r < kTapRows; ++r) s += red[r][t][threadIdx.x];
    (t < 9 ? a.dtaps + (blockIdx.x * 9 + t) * C : a.dbias + blockIdx.x * C)[c] = s;
  }
}

int64_t blocks_for(int64_t work, int threads) {
  return std::max<int64_t>(1, std::min<int64_t>((work + threads - 1) / threads, 65535));
}

}  // namespace

int64_t layer_norm_bwd_blocks(const RowGrid& g) {
  return std::max<int64_t>(1, std::min<int64_t>(g.rows() / 64, kMaxBlocks));
}

int64_t dwconv_bwd_blocks(const RowGrid& g) {
  return std::max<int64_t>(1, std::min<int64_t>(g.rows() / (4 * kTapRows), kMaxBlocks));
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

template <typename T, typename S>
cudaError_t dwconv_forward(const DwconvFwdArgs<T>& a, cudaStream_t stream) {
  const int64_t cout = a.epilogue == Epilogue::kGate ? a.grid.channels / 2 : a.grid.channels;
  dwconv_fwd_kernel<T, S>
      <<<blocks_for(a.grid.rows() * cout, kConvThreads), kConvThreads, 0, stream>>>(a);
  return cudaGetLastError();
}

template <typename T, typename S>
cudaError_t dwconv_backward(const DwconvBwdArgs<T, S>& a, cudaStream_t stream) {
  const RowGrid& g = a.fwd.grid;
  if (a.fwd.epilogue != Epilogue::kNone) {
    const int64_t cout = a.fwd.epilogue == Epilogue::kGate ? g.channels / 2 : g.channels;
    dwconv_grad_pre_kernel<T, S>
        <<<blocks_for(g.rows() * cout, kConvThreads), kConvThreads, 0, stream>>>(a);
  }
  DwconvFwdArgs<T> dx;  // dx = conv(grad_pre, flipped taps)
  dx.grid = g;
  dx.ld = a.fwd.ld;
  dx.x = MapView<const T>{a.grad_pre, g.height * g.width * g.channels, g.width * g.channels,
                          g.channels};
  dx.taps = a.flipped_taps;
  dx.out = a.dx;
  dwconv_fwd_kernel<T, S>
      <<<blocks_for(g.rows() * g.channels, kConvThreads), kConvThreads, 0, stream>>>(dx);
  const dim3 grid(dwconv_bwd_blocks(g), (g.channels + kWarp - 1) / kWarp);
  dwconv_dtaps_kernel<T, S><<<grid, dim3(kWarp, kTapRows), 0, stream>>>(a);
  return cudaGetLastError();
}

#define ASID_INSTANTIATE(T, S)                                                                  \
  template cudaError_t layer_norm_forward<T, S>(const LayerNormFwdArgs<T, S>&, cudaStream_t);  \
  template cudaError_t layer_norm_backward<T, S>(const LayerNormBwdArgs<T, S>&, cudaStream_t); \
  template cudaError_t dwconv_forward<T, S>(const DwconvFwdArgs<T>&, cudaStream_t);            \
  template cudaError_t dwconv_backward<T, S>(const DwconvBwdArgs<T, S>&, cudaStream_t);

ASID_INSTANTIATE(float, float)
ASID_INSTANTIATE(double, double)
ASID_INSTANTIATE(__half, float)
ASID_INSTANTIATE(__nv_bfloat16, float)

}  // namespace cuda
}  // namespace asid
