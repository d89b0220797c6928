// CUDA kernels of the depthwise 3x3 convolution with its epilogue (ops/depthwise_conv3x3.h),
// torch-free: raw pointers, sizes, strides and a stream. Arithmetic in S = float for float /
// half / bfloat16 maps, double for double.
#include "cuda/accumulate.cuh"
#include "ops/depthwise_conv3x3.h"

namespace asid {
namespace cuda {
namespace {

constexpr int kConvThreads = 256;
constexpr int kTapRows = 8;  // pixel lanes per block of the dtaps reduction (x 32 channels)

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

}  // namespace

int64_t dwconv_bwd_blocks(const RowGrid& g) {
  return std::max<int64_t>(1, std::min<int64_t>(g.rows() / (4 * kTapRows), kMaxBlocks));
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
  template cudaError_t dwconv_forward<T, S>(const DwconvFwdArgs<T>&, cudaStream_t);            \
  template cudaError_t dwconv_backward<T, S>(const DwconvBwdArgs<T, S>&, cudaStream_t);

ASID_INSTANTIATE(float, float)
ASID_INSTANTIATE(double, double)
ASID_INSTANTIATE(__half, float)
ASID_INSTANTIATE(__nv_bfloat16, float)

}  // namespace cuda
}  // namespace asid
