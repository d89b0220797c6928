// CUDA kernels of channel_attention: one block per pixel group (64 pixels for "window" groups,
// H*W/64 for "cell" groups), pixels streamed through shared memory in chunks; the C x C matrices
// live in shared memory, C x C accumulators in registers (fp32 for every map dtype).
#include <cmath>

#include "cuda/cuda_common.cuh"
#include "ops/channel_attention.h"

namespace asid {
namespace cuda {
namespace {

constexpr int kThreads = 256;
constexpr int kWarps = kThreads / 32;
constexpr int kChunk = 32;  // pixels per shared-memory chunk
constexpr int kEntries = kMaxChannels * kMaxChannels / kThreads;  // C x C entries per thread
constexpr float kUnclampedLimit = 1.0f / static_cast<float>(kNormEps);  // r < this: not clamped

// acc[t] += sum_p a[p * C + c] b[p * C + e] over the chunk, for entry (c, e) number
// threadIdx.x + t * kThreads.
__device__ __forceinline__ void accumulate_gram(const float* a, const float* b, int count, int C,
                                                float (&acc)[kEntries]) {
#pragma unroll
  for (int t = 0; t < kEntries; ++t) {
    const int idx = threadIdx.x + t * kThreads;
    if (idx < C * C) {
      const int c = idx / C, e = idx - c * C;
      float s = acc[t];
      for (int p = 0; p < count; ++p) s += a[p * C + c] * b[p * C + e];
      acc[t] = s;
    }
  }
}

// Loads `count` pixels of group g from p0 into tile (count x C, float).
template <typename T>
__device__ __forceinline__ void load_chunk(const MapView<const T>& map, const GroupLayout& l,
                                           int64_t g, int p0, int count, int C, float* tile) {
  load_members(map, l, g, p0, count, C, 1.0f, tile, C);
}

// 1 / max(sqrt(x), eps)
__device__ __forceinline__ float inverse_norm(float sum_of_squares) {
  return 1.0f / fmaxf(sqrtf(sum_of_squares), static_cast<float>(kNormEps));
}

template <typename T>
__global__ void __launch_bounds__(kThreads)
    channel_forward_kernel(const ChannelFwdArgs<T, float> a) {
  extern __shared__ float smem[];
  const GroupLayout& l = a.layout;
  const int C = static_cast<int>(a.channels), cs = C + 1, n = static_cast<int>(l.group_size());
  const int64_t g = blockIdx.x;
  float* attn = smem;               // C x cs
  float* x = attn + C * cs;         // chunk of q, then of v (kChunk x C)
  float* y = x + kChunk * C;        // chunk of k
  float* r = y + kChunk * C;        // rq (C) then rk (C)
  float acc[kEntries] = {};
  float squares = 0.0f;  // thread c < C: q channel c; C <= thread < 2C: k channel
  for (int p0 = 0; p0 < n; p0 += kChunk) {
    const int count = min(kChunk, n - p0);
    load_chunk(a.q, l, g, p0, count, C, x);
    load_chunk(a.k, l, g, p0, count, C, y);
    __syncthreads();
    accumulate_gram(x, y, count, C, acc);
    if (threadIdx.x < 2 * C) {
      const float* tile = threadIdx.x < C ? x : y;
      const int c = threadIdx.x % C;
      for (int p = 0; p < count; ++p) squares += tile[p * C + c] * tile[p * C + c];
    }
    __syncthreads();
  }
  if (threadIdx.x < 2 * C) r[threadIdx.x] = inverse_norm(squares);
  __syncthreads();
  const float temperature = to_float(*a.temperature);
#pragma unroll
  for (int t = 0; t < kEntries; ++t) {
    const int idx = threadIdx.x + t * kThreads;
    if (idx < C * C) {
      const int c = idx / C, e = idx - c * C;
      attn[c * cs + e] = acc[t] * temperature * r[c] * r[C + e];
    }
  }
  if (threadIdx.x < C) {
    a.rq[g * C + threadIdx.x] = r[threadIdx.x];
    a.rk[g * C + threadIdx.x] = r[C + threadIdx.x];
  }
  __syncthreads();
  const int lane = threadIdx.x & 31;
  for (int c = threadIdx.x >> 5; c < C; c += kWarps) {  // softmax of row c, lanes e, e + 32
    float* row = attn + c * cs;
    const float s0 = lane < C ? row[lane] : -INFINITY;
    const float s1 = lane + 32 < C ? row[lane + 32] : -INFINITY;
    const float m = warp_max(fmaxf(s0, s1));
    const float e0 = lane < C ? expf(s0 - m) : 0.0f, e1 = lane + 32 < C ? expf(s1 - m) : 0.0f;
    const float inv = 1.0f / warp_sum(e0 + e1);
    float* out = a.attn + (g * C + c) * C;
    if (lane < C) out[lane] = row[lane] = e0 * inv;
    if (lane + 32 < C) out[lane + 32] = row[lane + 32] = e1 * inv;
  }
  __syncthreads();
  for (int p0 = 0; p0 < n; p0 += kChunk) {  // out[p, c] = sum_e attn[c, e] v[p, e]
    const int count = min(kChunk, n - p0);
    load_chunk(a.v, l, g, p0, count, C, x);
    __syncthreads();
    for (int idx = threadIdx.x; idx < count * C; idx += kThreads) {
      const int p = idx / C, c = idx - p * C;
      float s = 0.0f;
      for (int e = 0; e < C; ++e) s += attn[c * cs + e] * x[p * C + e];
      member_pixel(a.out, l, g, p0 + p)[c] = from_float<T>(s);
    }
    __syncthreads();
  }
}

// Pass 1 over the pixels: raw Gram q^T k and dA = dO^T v. Then with G = rq rk Gram (normalised),
// dS = P (dA - rowsum(P dA)), the row/column dots dS.G give the normalisation terms and the
// group's dtemperature partial. Pass 2: dq = t rq (k (rk dS)^T - [unclamped] q rq rowdot_q),
// dk = t rk (q (rq dS) - [unclamped] k rk rowdot_k), dv = dO P.
template <typename T>
__global__ void __launch_bounds__(kThreads)
    channel_backward_kernel(const ChannelBwdArgs<T, float> a, float* dtemperature_workspace) {
  extern __shared__ float smem[];
  const GroupLayout& l = a.layout;
  const int C = static_cast<int>(a.channels), cs = C + 1, n = static_cast<int>(l.group_size());
  const int64_t g = blockIdx.x;
  float* gram = smem;           // C x cs
  float* p = gram + C * cs;     // C x cs
  float* ds = p + C * cs;       // C x cs
  float* qc = ds + C * cs;      // chunks, kChunk x C each
  float* kc = qc + kChunk * C;
  float* vc = kc + kChunk * C;  // v in pass 1
  float* oc = vc + kChunk * C;  // dO
  float* r = oc + kChunk * C;   // rq (C), rk (C)
  float* rowdot = r + 2 * C;    // q rows (C), k columns (C)
  float acc_gram[kEntries] = {}, acc_da[kEntries] = {};
  for (int p0 = 0; p0 < n; p0 += kChunk) {
    const int count = min(kChunk, n - p0);
    load_chunk(a.q, l, g, p0, count, C, qc);
    load_chunk(a.k, l, g, p0, count, C, kc);
    load_chunk(a.v, l, g, p0, count, C, vc);
    load_chunk(a.grad_out, l, g, p0, count, C, oc);
    __syncthreads();
    accumulate_gram(qc, kc, count, C, acc_gram);
    accumulate_gram(oc, vc, count, C, acc_da);
    __syncthreads();
  }
  if (threadIdx.x < 2 * C)
    r[threadIdx.x] = threadIdx.x < C ? a.rq[g * C + threadIdx.x] : a.rk[g * C + threadIdx.x - C];
  __syncthreads();
#pragma unroll
  for (int t = 0; t < kEntries; ++t) {
    const int idx = threadIdx.x + t * kThreads;
    if (idx < C * C) {
      const int c = idx / C, e = idx - c * C;
      gram[c * cs + e] = acc_gram[t] * r[c] * r[C + e];
      p[c * cs + e] = a.attn[(g * C + c) * C + e];
      ds[c * cs + e] = acc_da[t];
    }
  }
  __syncthreads();
  const int lane = threadIdx.x & 31;
  for (int c = threadIdx.x >> 5; c < C; c += kWarps) {  // softmax backward of row c
    const int e0 = lane, e1 = lane + 32;
    const float p0 = e0 < C ? p[c * cs + e0] : 0.0f, p1 = e1 < C ? p[c * cs + e1] : 0.0f;
    const float da0 = e0 < C ? ds[c * cs + e0] : 0.0f, da1 = e1 < C ? ds[c * cs + e1] : 0.0f;
    const float dot = warp_sum(p0 * da0 + p1 * da1);
    const float ds0 = p0 * (da0 - dot), ds1 = p1 * (da1 - dot);
    const float g0 = e0 < C ? gram[c * cs + e0] : 0.0f, g1 = e1 < C ? gram[c * cs + e1] : 0.0f;
    const float rd = warp_sum(ds0 * g0 + ds1 * g1);
    if (e0 < C) ds[c * cs + e0] = ds0;
    if (e1 < C) ds[c * cs + e1] = ds1;
    if (lane == 0) rowdot[c] = rd;
  }
  __syncthreads();
  if (threadIdx.x < C) {
    const int e = threadIdx.x;
    float s = 0.0f;
    for (int c = 0; c < C; ++c) s += ds[c * cs + e] * gram[c * cs + e];
    rowdot[C + e] = s;
  }
  if (threadIdx.x == 0) {
    float s = 0.0f;
    for (int c = 0; c < C; ++c) s += rowdot[c];
    dtemperature_workspace[g] = s;
  }
  __syncthreads();
  const float temperature = to_float(*a.temperature);
  for (int p0 = 0; p0 < n; p0 += kChunk) {
    const int count = min(kChunk, n - p0);
    load_chunk(a.q, l, g, p0, count, C, qc);
    load_chunk(a.k, l, g, p0, count, C, kc);
    load_chunk(a.grad_out, l, g, p0, count, C, oc);
    __syncthreads();
    for (int idx = threadIdx.x; idx < count * C; idx += kThreads) {
      const int m = idx / C, x = idx - m * C;
      const float* qrow = qc + m * C;
      const float* krow = kc + m * C;
      const float* orow = oc + m * C;
      float dqn = 0.0f, dkn = 0.0f, dv = 0.0f;
      for (int y = 0; y < C; ++y) {
        dqn += krow[y] * r[C + y] * ds[x * cs + y];
        dkn += qrow[y] * r[y] * ds[y * cs + x];
        dv += orow[y] * p[y * cs + x];
      }
      const float rq = r[x], rk = r[C + x];
      const float dq =
          temperature * rq * (dqn - (rq < kUnclampedLimit ? qrow[x] * rq * rowdot[x] : 0.0f));
      const float dk =
          temperature * rk * (dkn - (rk < kUnclampedLimit ? krow[x] * rk * rowdot[C + x] : 0.0f));
      member_pixel(a.dq, l, g, p0 + m)[x] = from_float<T>(dq);
      member_pixel(a.dk, l, g, p0 + m)[x] = from_float<T>(dk);
      member_pixel(a.dv, l, g, p0 + m)[x] = from_float<T>(dv);
    }
    __syncthreads();
  }
}

}  // namespace

template <typename T>
cudaError_t channel_attention_forward(const ChannelFwdArgs<T, float>& a, cudaStream_t stream) {
  const size_t C = a.channels;
  return launch_per_group(&channel_forward_kernel<T>, kThreads, a.layout.num_groups(),
                          C * (C + 1) + 2 * kChunk * C + 2 * C, stream, a);
}

template <typename T>
cudaError_t channel_attention_backward(const ChannelBwdArgs<T, float>& a,
                                       float* dtemperature_workspace, cudaStream_t stream) {
  const size_t C = a.channels;
  const int64_t groups = a.layout.num_groups();
  const cudaError_t err =
      launch_per_group(&channel_backward_kernel<T>, kThreads, groups,
                       3 * C * (C + 1) + 4 * kChunk * C + 4 * C, stream, a, dtemperature_workspace);
  if (err != cudaSuccess) return err;
  return sum_rows(dtemperature_workspace, groups, 1, a.dtemperature, stream);
}

#define ASID_INSTANTIATE(T)                                                                  \
  template cudaError_t channel_attention_forward<T>(const ChannelFwdArgs<T, float>&,         \
                                                    cudaStream_t);                           \
  template cudaError_t channel_attention_backward<T>(const ChannelBwdArgs<T, float>&, float*, \
                                                     cudaStream_t);
ASID_INSTANTIATE(float)
ASID_INSTANTIATE(__half)
ASID_INSTANTIATE(__nv_bfloat16)
#undef ASID_INSTANTIATE

}  // namespace cuda
}  // namespace asid
