// Vectorised building blocks of the CPU kernels: 32-byte SIMD vectors (GCC/Clang vector
// extensions, lowered to whatever the translation unit's target provides), row-major tile
// products, and the row operations of the softmax and its backward.
//
// Included only by cpu/kernels_impl.h, inside the per-ISA namespace asid::cpu::ASID_CPU_ISA, so the
// baseline and AVX2 builds of these inline functions never meet at link time.
#pragma once

#include <cmath>
#include <cstdint>

namespace asid {
namespace cpu {
namespace ASID_CPU_ISA {

typedef float f32x8 __attribute__((vector_size(32)));
typedef int32_t i32x8 __attribute__((vector_size(32)));
typedef double f64x4 __attribute__((vector_size(32)));

template <typename T>
struct Simd;
template <>
struct Simd<float> {
  using V = f32x8;
  static constexpr int lanes = 8;
  static V splat(float x) { return V{x, x, x, x, x, x, x, x}; }
};
template <>
struct Simd<double> {
  using V = f64x4;
  static constexpr int lanes = 4;
  static V splat(double x) { return V{x, x, x, x}; }
};
template <typename T>
using vec_t = typename Simd<T>::V;

template <typename T>
inline vec_t<T> vload(const T* p) {
  vec_t<T> v;
  __builtin_memcpy(&v, p, sizeof(v));
  return v;
}
template <typename T>
inline void vstore(T* p, vec_t<T> v) {
  __builtin_memcpy(p, &v, sizeof(v));
}
template <typename T>
inline vec_t<T> vsplat(T x) {
  return Simd<T>::splat(x);
}
template <typename T>
inline T sum_lanes(vec_t<T> v) {
  T s = 0;
  for (int i = 0; i < Simd<T>::lanes; ++i) s += v[i];
  return s;
}

// C[M x N] (+)= op(A) B with op(A) = A (M x K, row stride lda) or, when TA, A^T (A stored
// K x M). B (K x N) and C row-major; N a multiple of the vector width. Register block: RB rows x
// NV vectors of C.
template <bool TA, int RB, int NV, typename T>
inline void gemm_block(int64_t K, const T* A, int64_t lda, const T* B, int64_t ldb, T* C,
                       int64_t ldc, bool accumulate) {
  using V = vec_t<T>;
  constexpr int L = Simd<T>::lanes;
  V c[RB][NV];
  for (int r = 0; r < RB; ++r)
    for (int v = 0; v < NV; ++v) c[r][v] = accumulate ? vload(C + r * ldc + v * L) : V{};
  for (int64_t k = 0; k < K; ++k) {
    V b[NV];
    for (int v = 0; v < NV; ++v) b[v] = vload(B + k * ldb + v * L);
    for (int r = 0; r < RB; ++r) {
      const V a = vsplat(TA ? A[k * lda + r] : A[r * lda + k]);
      for (int v = 0; v < NV; ++v) c[r][v] += a * b[v];
    }
  }
  for (int r = 0; r < RB; ++r)
    for (int v = 0; v < NV; ++v) vstore(C + r * ldc + v * L, c[r][v]);
}

template <bool TA, int NV, typename T>
inline void gemm_columns(int64_t M, int64_t K, const T* A, int64_t lda, const T* B, int64_t ldb,
                         T* C, int64_t ldc, bool accumulate) {
  const int64_t row_step = TA ? 1 : lda;  // distance between consecutive rows of op(A)
  int64_t r = 0;
  if (NV == 1)  // one vector per row: 8 rows keep 8 FMAs in flight
    for (; r + 8 <= M; r += 8)
      gemm_block<TA, 8, 1>(K, A + r * row_step, lda, B, ldb, C + r * ldc, ldc, accumulate);
  for (; r + 4 <= M; r += 4)
    gemm_block<TA, 4, NV>(K, A + r * row_step, lda, B, ldb, C + r * ldc, ldc, accumulate);
  for (; r < M; ++r)
    gemm_block<TA, 1, NV>(K, A + r * row_step, lda, B, ldb, C + r * ldc, ldc, accumulate);
}

template <bool TA, typename T>
inline void gemm_op(int64_t M, int64_t N, int64_t K, const T* A, int64_t lda, const T* B,
                    int64_t ldb, T* C, int64_t ldc, bool accumulate) {
  constexpr int L = Simd<T>::lanes;
  int64_t j = 0;
  for (; j + 2 * L <= N; j += 2 * L)
    gemm_columns<TA, 2>(M, K, A, lda, B + j, ldb, C + j, ldc, accumulate);
  for (; j < N; j += L) gemm_columns<TA, 1>(M, K, A, lda, B + j, ldb, C + j, ldc, accumulate);
}

// C (+)= A B, A: M x K.
template <typename T>
inline void gemm(int64_t M, int64_t N, int64_t K, const T* A, int64_t lda, const T* B, int64_t ldb,
                 T* C, int64_t ldc, bool accumulate = false) {
  gemm_op<false>(M, N, K, A, lda, B, ldb, C, ldc, accumulate);
}

// C (+)= A^T B, A stored K x M.
template <typename T>
inline void gemm_at(int64_t M, int64_t N, int64_t K, const T* A, int64_t lda, const T* B,
                    int64_t ldb, T* C, int64_t ldc, bool accumulate = false) {
  gemm_op<true>(M, N, K, A, lda, B, ldb, C, ldc, accumulate);
}

// exp(x) for x <= 0 (softmax after the max shift): Cody-Waite reduction x = n ln2 + r and a
// degree-6 polynomial for exp(r) (Cephes expf coefficients, ~1 ulp); 0 below -87, NaN stays NaN.
inline f32x8 exp_nonpositive(f32x8 x) {
  const i32x8 underflow = x < -87.0f;  // all-ones lanes flush to 0
  x = underflow ? vsplat(-87.0f) : x;
  const float round_magic = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer
  const f32x8 t = x * 1.44269504088896341f + round_magic;
  const f32x8 n = t - round_magic;
  f32x8 r = x - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  f32x8 p = vsplat(1.9875691500e-4f);
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  const i32x8 pow2n = (__builtin_convertvector(n, i32x8) + 127) << 23;
  return (f32x8)(((i32x8)(p * (f32x8)pow2n)) & ~underflow);
}

// x[i] = exp(x[i] - shift) for i < n; returns the sum. float: vector exp; double: libm.
inline float exp_shifted(float* x, int64_t n, float shift) {
  constexpr int L = 8;
  f32x8 acc{};
  int64_t i = 0;
  for (; i + L <= n; i += L) {
    const f32x8 e = exp_nonpositive(vload(x + i) - shift);
    vstore(x + i, e);
    acc += e;
  }
  if (i < n) {  // tail: pad one vector with -inf (exp -> 0)
    float tail[L];
    for (int t = 0; t < L; ++t) tail[t] = i + t < n ? x[i + t] : -INFINITY;
    const f32x8 e = exp_nonpositive(vload(tail) - shift);
    vstore(tail, e);
    for (int64_t t = 0; i + t < n; ++t) x[i + t] = tail[t];
    acc += e;
  }
  return sum_lanes<float>(acc);
}

inline double exp_shifted(double* x, int64_t n, double shift) {
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) sum += (x[i] = std::exp(x[i] - shift));
  return sum;
}

// max over x[0..n) (n >= 1).
template <typename T>
inline T max_of(const T* x, int64_t n) {
  constexpr int L = Simd<T>::lanes;
  T m = x[0];
  int64_t i = 0;
  if (n >= L) {
    vec_t<T> vm = vload(x);
    for (i = L; i + L <= n; i += L) {
      const vec_t<T> xi = vload(x + i);
      vm = xi > vm ? xi : vm;
    }
    for (int t = 0; t < L; ++t) m = vm[t] > m ? vm[t] : m;
  }
  for (; i < n; ++i) m = x[i] > m ? x[i] : m;
  return m;
}

// sum_i a[i] b[i], i < n.
template <typename T>
inline T dot(const T* a, const T* b, int64_t n) {
  constexpr int L = Simd<T>::lanes;
  vec_t<T> acc{};
  int64_t i = 0;
  for (; i + L <= n; i += L) acc += vload(a + i) * vload(b + i);
  T s = sum_lanes<T>(acc);
  for (; i < n; ++i) s += a[i] * b[i];
  return s;
}

// dst[j] = src[j], j < n (vector moves: a libc memcpy call costs more for rows this short).
template <typename T>
inline void copy_row(const T* src, int64_t n, T* dst) {
  constexpr int L = Simd<T>::lanes;
  int64_t j = 0;
  for (; j + L <= n; j += L) vstore(dst + j, vload(src + j));
  for (; j < n; ++j) dst[j] = src[j];
}

// Numerically stable softmax of each of the `rows` rows (length n, stride ld), in place; also
// copied to `copy` (stride ldc) when non-null.
template <typename T>
inline void softmax_rows(T* x, int64_t rows, int64_t n, int64_t ld, T* copy = nullptr,
                         int64_t ldc = 0) {
  constexpr int L = Simd<T>::lanes;
  for (int64_t r = 0; r < rows; ++r) {
    T* row = x + r * ld;
    const T inv = T(1) / exp_shifted(row, n, max_of(row, n));
    int64_t j = 0;
    for (; j + L <= n; j += L) vstore(row + j, vload(row + j) * inv);
    for (; j < n; ++j) row[j] *= inv;
    if (copy) copy_row(row, n, copy + r * ldc);
  }
}

// Softmax backward, row by row: ds = p * (dp - sum_j p dp), written over dp.
template <typename T>
inline void softmax_backward_rows(const T* p, int64_t ldp, T* dp, int64_t ld, int64_t rows,
                                  int64_t n) {
  constexpr int L = Simd<T>::lanes;
  for (int64_t r = 0; r < rows; ++r) {
    const T* pr = p + r * ldp;
    T* dr = dp + r * ld;
    const T s = dot(pr, dr, n);
    int64_t j = 0;
    for (; j + L <= n; j += L) vstore(dr + j, vload(pr + j) * (vload(dr + j) - s));
    for (; j < n; ++j) dr[j] = pr[j] * (dr[j] - s);
  }
}

// dst[i * ldd + j] (+)= src[i * lds + j] for i < rows, j < cols.
template <typename T>
inline void copy_matrix(const T* src, int64_t lds, int64_t rows, int64_t cols, T* dst, int64_t ldd,
                        bool accumulate = false) {
  constexpr int L = Simd<T>::lanes;
  for (int64_t i = 0; i < rows; ++i) {
    const T* s = src + i * lds;
    T* d = dst + i * ldd;
    if (accumulate) {
      int64_t j = 0;
      for (; j + L <= cols; j += L) vstore(d + j, vload(d + j) + vload(s + j));
      for (; j < cols; ++j) d[j] += s[j];
    } else {
      copy_row(s, cols, d);
    }
  }
}

// dst[j * ldd + i] = src[i * lds + j] for i < rows, j < cols.
template <typename T>
inline void transpose(const T* src, int64_t lds, int64_t rows, int64_t cols, T* dst, int64_t ldd) {
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < cols; ++j) dst[j * ldd + i] = src[i * lds + j];
}

}  // namespace ASID_CPU_ISA
}  // namespace cpu
}  // namespace asid
