// CUDA kernels of window_attention and shared_window_attention: one block per window, q/k/v tiles
// in shared memory (float), one warp per query row (lanes hold keys j and j + 32) with warp-level
// softmax; fp32 accumulation for float / half / bfloat16 maps.
#include <cmath>

#include "cuda/cuda_common.cuh"
#include "ops/window_attention.h"

namespace asid {
namespace cuda {
namespace {

constexpr int kWarps = 4;
constexpr int kThreads = 32 * kWarps;

// Row stride of tiles read by key-indexed lanes (row j, fixed channel): odd, so the 32 lanes hit
// 32 different banks.
__host__ __device__ inline int odd_stride(int d) { return d % 2 == 0 ? d + 1 : d; }

// Warp-uniform broadcast of the value held for key j (lane j & 31 holds keys j, j + 32 in lo, hi).
__device__ __forceinline__ float from_key(float lo, float hi, int j) {
  return __shfl_sync(kFullMask, j < 32 ? lo : hi, j & 31);
}

// row[c] = scale * acc (c = lane, lane + 32; c < d).
template <typename T>
__device__ __forceinline__ void store_row(T* row, float lo, float hi, int d, float scale) {
  const int lane = threadIdx.x & 31;
  if (lane < d) row[lane] = from_float<T>(scale * lo);
  if (lane + 32 < d) row[lane + 32] = from_float<T>(scale * hi);
}

// acc (lo, hi for channels lane, lane + 32) += sum_j w_j tile[j * ld + c], w_j from key lanes.
__device__ __forceinline__ void accumulate_rows(float w_lo, float w_hi, int n, const float* tile,
                                                int ld, int d, float* lo, float* hi) {
  const int lane = threadIdx.x & 31;
  for (int j = 0; j < n; ++j) {
    const float w = from_key(w_lo, w_hi, j);
    if (lane < d) *lo += w * tile[j * ld + lane];
    if (lane + 32 < d) *hi += w * tile[j * ld + lane + 32];
  }
}

// sum_c a[c] b[j * ld + c] for the key j of this lane (0 when j >= n).
__device__ __forceinline__ float key_dot(const float* a, const float* b, int ld, int j, int n,
                                         int d) {
  if (j >= n) return 0.0f;
  float acc = 0.0f;
  for (int c = 0; c < d; ++c) acc += a[c] * b[j * ld + c];
  return acc;
}

template <typename T>
__global__ void __launch_bounds__(kThreads) window_forward_kernel(const WindowFwdArgs<T> a) {
  extern __shared__ float smem[];
  const GroupLayout& l = a.layout;
  const int n = static_cast<int>(l.group_size()), d = static_cast<int>(a.dim);
  const int ks = odd_stride(d);
  const int64_t g = blockIdx.x;
  float* q = smem;       // n x d, scaled
  float* k = q + n * d;  // n x ks
  float* v = k + n * ks;  // n x d
  load_members(a.q, l, g, 0, n, d, static_cast<float>(a.scale), q, d);
  load_members(a.k, l, g, 0, n, d, 1.0f, k, ks);
  load_members(a.v, l, g, 0, n, d, 1.0f, v, d);
  __syncthreads();
  const int lane = threadIdx.x & 31, j0 = lane, j1 = lane + 32;
  for (int i = threadIdx.x >> 5; i < n; i += kWarps) {
    const T* bias = a.bias ? a.bias + i * n : nullptr;
    float s0 = key_dot(q + i * d, k, ks, j0, n, d), s1 = key_dot(q + i * d, k, ks, j1, n, d);
    s0 = j0 < n ? s0 + (bias ? to_float(bias[j0]) : 0.0f) : -INFINITY;
    s1 = j1 < n ? s1 + (bias ? to_float(bias[j1]) : 0.0f) : -INFINITY;
    const float m = warp_max(fmaxf(s0, s1));
    const float e0 = j0 < n ? expf(s0 - m) : 0.0f, e1 = j1 < n ? expf(s1 - m) : 0.0f;
    const float inv = 1.0f / warp_sum(e0 + e1);
    const float p0 = e0 * inv, p1 = e1 * inv;
    T* attn = a.attn + (g * n + i) * n;
    if (j0 < n) attn[j0] = from_float<T>(p0);
    if (j1 < n) attn[j1] = from_float<T>(p1);
    float lo = 0.0f, hi = 0.0f;
    accumulate_rows(p0, p1, n, v, d, d, &lo, &hi);
    store_row(member_pixel(a.out, l, g, i), lo, hi, d, 1.0f);
  }
}

// Phase 1 (warp per query row i): dP = dO V^T (+ grad_attn), dS = P (dP - rowsum(P dP)),
// dQ = scale dS K. Phase 2 (warp per key row j): dV = P^T dO, dK = dS^T (scale Q).
template <typename T>
__global__ void __launch_bounds__(kThreads)
    window_backward_kernel(const WindowBwdArgs<T> a, float* dbias_workspace) {
  extern __shared__ float smem[];
  const GroupLayout& l = a.layout;
  const int n = static_cast<int>(l.group_size()), d = static_cast<int>(a.dim);
  const int ks = odd_stride(d);
  const int64_t g = blockIdx.x;
  const float scale = static_cast<float>(a.scale);
  float* qs = smem;        // n x d, scaled
  float* k = qs + n * d;   // n x d
  float* v = k + n * d;    // n x ks
  float* go = v + n * ks;  // n x d
  float* p = go + n * d;   // n x n
  float* ds = p + n * n;   // n x n
  load_members(a.q, l, g, 0, n, d, scale, qs, d);
  load_members(a.k, l, g, 0, n, d, 1.0f, k, d);
  load_members(a.v, l, g, 0, n, d, 1.0f, v, ks);
  load_members(a.grad_out, l, g, 0, n, d, 1.0f, go, d);
  __syncthreads();
  const int lane = threadIdx.x & 31, j0 = lane, j1 = lane + 32;
  for (int i = threadIdx.x >> 5; i < n; i += kWarps) {
    const int64_t row = (g * n + i) * n;
    const T* ga = a.grad_attn ? a.grad_attn + row : nullptr;
    const float p0 = j0 < n ? to_float(a.attn[row + j0]) : 0.0f;
    const float p1 = j1 < n ? to_float(a.attn[row + j1]) : 0.0f;
    float dp0 = key_dot(go + i * d, v, ks, j0, n, d), dp1 = key_dot(go + i * d, v, ks, j1, n, d);
    if (ga && j0 < n) dp0 += to_float(ga[j0]);
    if (ga && j1 < n) dp1 += to_float(ga[j1]);
    const float rowdot = warp_sum(p0 * dp0 + p1 * dp1);
    const float ds0 = p0 * (dp0 - rowdot), ds1 = p1 * (dp1 - rowdot);
    if (j0 < n) {
      p[i * n + j0] = p0;
      ds[i * n + j0] = ds0;
      if (dbias_workspace) dbias_workspace[row + j0] = ds0;
    }
    if (j1 < n) {
      p[i * n + j1] = p1;
      ds[i * n + j1] = ds1;
      if (dbias_workspace) dbias_workspace[row + j1] = ds1;
    }
    float lo = 0.0f, hi = 0.0f;
    accumulate_rows(ds0, ds1, n, k, d, d, &lo, &hi);
    store_row(member_pixel(a.dq, l, g, i), lo, hi, d, scale);
  }
  __syncthreads();
  for (int j = threadIdx.x >> 5; j < n; j += kWarps) {
    float dv_lo = 0.0f, dv_hi = 0.0f, dk_lo = 0.0f, dk_hi = 0.0f;
    for (int i = 0; i < n; ++i) {
      const float pij = p[i * n + j], dsij = ds[i * n + j];
      if (lane < d) {
        dv_lo += pij * go[i * d + lane];
        dk_lo += dsij * qs[i * d + lane];
      }
      if (lane + 32 < d) {
        dv_hi += pij * go[i * d + lane + 32];
        dk_hi += dsij * qs[i * d + lane + 32];
      }
    }
    store_row(member_pixel(a.dv, l, g, j), dv_lo, dv_hi, d, 1.0f);
    store_row(member_pixel(a.dk, l, g, j), dk_lo, dk_hi, d, 1.0f);
  }
}

template <typename T>
__global__ void __launch_bounds__(kThreads) shared_forward_kernel(const SharedFwdArgs<T> a) {
  extern __shared__ float smem[];
  const GroupLayout& l = a.layout;
  const int n = static_cast<int>(l.group_size()), d = static_cast<int>(a.dim);
  const int64_t g = blockIdx.x;
  float* v = smem;  // n x d
  load_members(a.v, l, g, 0, n, d, 1.0f, v, d);
  __syncthreads();
  const int lane = threadIdx.x & 31, j0 = lane, j1 = lane + 32;
  for (int i = threadIdx.x >> 5; i < n; i += kWarps) {
    const T* attn = a.attn + (g * n + i) * n;
    const float p0 = j0 < n ? to_float(attn[j0]) : 0.0f, p1 = j1 < n ? to_float(attn[j1]) : 0.0f;
    float lo = 0.0f, hi = 0.0f;
    accumulate_rows(p0, p1, n, v, d, d, &lo, &hi);
    store_row(member_pixel(a.out, l, g, i), lo, hi, d, 1.0f);
  }
}

// Phase 1 (warp per row i): dattn[i, j] = sum_c dO[i, c] v[j, c]. Phase 2 (warp per row j):
// dV = attn^T dO.
template <typename T>
__global__ void __launch_bounds__(kThreads) shared_backward_kernel(const SharedBwdArgs<T> a) {
  extern __shared__ float smem[];
  const GroupLayout& l = a.layout;
  const int n = static_cast<int>(l.group_size()), d = static_cast<int>(a.dim);
  const int ks = odd_stride(d);
  const int64_t g = blockIdx.x;
  float* v = smem;         // n x ks
  float* go = v + n * ks;  // n x d
  float* p = go + n * d;   // n x n
  load_members(a.v, l, g, 0, n, d, 1.0f, v, ks);
  load_members(a.grad_out, l, g, 0, n, d, 1.0f, go, d);
  for (int e = threadIdx.x; e < n * n; e += blockDim.x) p[e] = to_float(a.attn[g * n * n + e]);
  __syncthreads();
  const int lane = threadIdx.x & 31, j0 = lane, j1 = lane + 32;
  for (int i = threadIdx.x >> 5; i < n; i += kWarps) {
    T* dattn = a.dattn + (g * n + i) * n;
    const float dp0 = key_dot(go + i * d, v, ks, j0, n, d);
    const float dp1 = key_dot(go + i * d, v, ks, j1, n, d);
    if (j0 < n) dattn[j0] = from_float<T>(dp0);
    if (j1 < n) dattn[j1] = from_float<T>(dp1);
  }
  for (int j = threadIdx.x >> 5; j < n; j += kWarps) {
    float lo = 0.0f, hi = 0.0f;
    for (int i = 0; i < n; ++i) {
      const float pij = p[i * n + j];
      if (lane < d) lo += pij * go[i * d + lane];
      if (lane + 32 < d) hi += pij * go[i * d + lane + 32];
    }
    store_row(member_pixel(a.dv, l, g, j), lo, hi, d, 1.0f);
  }
}

}  // namespace

template <typename T>
cudaError_t window_attention_forward(const WindowFwdArgs<T>& a, cudaStream_t stream) {
  const size_t n = a.layout.group_size(), d = a.dim;
  return launch_per_group(&window_forward_kernel<T>, kThreads, a.layout.num_groups(),
                          n * (2 * d + odd_stride(d)), stream, a);
}

template <typename T>
cudaError_t window_attention_backward(const WindowBwdArgs<T>& a, float* dbias_workspace,
                                      cudaStream_t stream) {
  const size_t n = a.layout.group_size(), d = a.dim;
  float* workspace = a.dbias ? dbias_workspace : nullptr;
  const cudaError_t err =
      launch_per_group(&window_backward_kernel<T>, kThreads, a.layout.num_groups(),
                       n * (3 * d + odd_stride(d) + 2 * n), stream, a, workspace);
  if (err != cudaSuccess || !a.dbias) return err;
  return sum_rows(workspace, a.layout.num_groups(), static_cast<int>(n * n), a.dbias, stream);
}

template <typename T>
cudaError_t shared_window_attention_forward(const SharedFwdArgs<T>& a, cudaStream_t stream) {
  const size_t n = a.layout.group_size(), d = a.dim;
  return launch_per_group(&shared_forward_kernel<T>, kThreads, a.layout.num_groups(), n * d,
                          stream, a);
}

template <typename T>
cudaError_t shared_window_attention_backward(const SharedBwdArgs<T>& a, cudaStream_t stream) {
  const size_t n = a.layout.group_size(), d = a.dim;
  return launch_per_group(&shared_backward_kernel<T>, kThreads, a.layout.num_groups(),
                          n * (d + odd_stride(d) + n), stream, a);
}

#define ASID_INSTANTIATE(T)                                                                      \
  template cudaError_t window_attention_forward<T>(const WindowFwdArgs<T>&, cudaStream_t);       \
  template cudaError_t window_attention_backward<T>(const WindowBwdArgs<T>&, float*,             \
                                                    cudaStream_t);                               \
  template cudaError_t shared_window_attention_forward<T>(const SharedFwdArgs<T>&, cudaStream_t); \
  template cudaError_t shared_window_attention_backward<T>(const SharedBwdArgs<T>&, cudaStream_t);
ASID_INSTANTIATE(float)
ASID_INSTANTIATE(__half)
ASID_INSTANTIATE(__nv_bfloat16)
#undef ASID_INSTANTIATE

}  // namespace cuda
}  // namespace asid
