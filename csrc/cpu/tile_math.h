// Vectorised building blocks of the CPU kernels: 32-byte SIMD vectors (GCC/Clang vector
// extensions, lowered to whatever the translation unit's target provides) with partial loads and
// stores and horizontal sums, cache-line-aligned scratch vectors, row-major tile products, the
// float exponential, and the row operations of the softmax and its backward.
//
// Included only by the kernel headers (cpu/kernels/*.h), which setup.py compiles once per
// instruction set with ASID_CPU_ISA naming the set's namespace (cpu/isa.h), so the builds of these
// inline functions for different sets never meet at link time.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <new>
#include <vector>

// Small vector helpers are forced inline: an out-of-line call would pass its vectors through
// memory and clobber every vector register of the caller's loop (GCC's inliner gives up on them
// inside the larger kernels).
#define ASID_VEC_INLINE inline __attribute__((always_inline))

namespace asid {
namespace cpu {
namespace ASID_CPU_ISA {

typedef float f32x8 __attribute__((vector_size(32)));
typedef int32_t i32x8 __attribute__((vector_size(32)));
typedef uint32_t u32x8 __attribute__((vector_size(32)));
typedef double f64x4 __attribute__((vector_size(32)));
typedef float f32x4 __attribute__((vector_size(16)));
typedef double f64x2 __attribute__((vector_size(16)));

template <typename T>
struct Simd;
template <>
struct Simd<float> {
  using V = f32x8;
  using Half = f32x4;
  static constexpr int lanes = 8;
  static V splat(float x) { return V{x, x, x, x, x, x, x, x}; }
  static V widen(f32x4 h) { return __builtin_shufflevector(h, f32x4{}, 0, 1, 2, 3, 4, 5, 6, 7); }
  static f32x4 low_half(V v) { return __builtin_shufflevector(v, v, 0, 1, 2, 3); }
};
template <>
struct Simd<double> {
  using V = f64x4;
  using Half = f64x2;
  static constexpr int lanes = 4;
  static V splat(double x) { return V{x, x, x, x}; }
  static V widen(f64x2 h) { return __builtin_shufflevector(h, f64x2{}, 0, 1, 2, 3); }
  static f64x2 low_half(V v) { return __builtin_shufflevector(v, v, 0, 1); }
};
template <typename T>
using vec_t = typename Simd<T>::V;

template <typename T>
ASID_VEC_INLINE vec_t<T> vload(const T* p) {
  vec_t<T> v;
  __builtin_memcpy(&v, p, sizeof(v));
  return v;
}
template <typename T>
ASID_VEC_INLINE void vstore(T* p, vec_t<T> v) {
  __builtin_memcpy(p, &v, sizeof(v));
}
template <typename T>
ASID_VEC_INLINE vec_t<T> vsplat(T x) {
  return Simd<T>::splat(x);
}
template <typename T>
constexpr int lanes() {
  return Simd<T>::lanes;
}

// memcpy of the first n (< lanes <= 8) elements with a compile-time size per case (no library
// call); cases of lanes or more are never reached and compiled out.
template <typename T>
ASID_VEC_INLINE void copy_prefix(void* dst, const void* src, int64_t n) {
  switch (n) {
#define ASID_COPY_CASE(k)                                                  \
  case k:                                                                  \
    if constexpr (k < lanes<T>()) __builtin_memcpy(dst, src, k * sizeof(T)); \
    return;
    ASID_COPY_CASE(1) ASID_COPY_CASE(2) ASID_COPY_CASE(3) ASID_COPY_CASE(4)
    ASID_COPY_CASE(5) ASID_COPY_CASE(6) ASID_COPY_CASE(7)
#undef ASID_COPY_CASE
    default:
      return;
  }
}

// The first n (<= lanes) elements of p, zeros after them. A half vector (the channel tail of
// d = 12 and 36 in float) is one register load; other partial vectors go through memory, whose
// narrow stores then wide load stall the load for a dozen cycles.
template <typename T>
ASID_VEC_INLINE vec_t<T> load_n(const T* p, int64_t n) {
  if (n == lanes<T>()) return vload(p);
  if (2 * n == lanes<T>()) {
    typename Simd<T>::Half h;
    __builtin_memcpy(&h, p, sizeof(h));
    return Simd<T>::widen(h);
  }
  vec_t<T> v{};
  copy_prefix<T>(&v, p, n);
  return v;
}

// Stores the first n (<= lanes) elements of v.
template <typename T>
ASID_VEC_INLINE void store_n(T* p, vec_t<T> v, int64_t n) {
  if (n == lanes<T>()) return vstore(p, v);
  if (2 * n == lanes<T>()) {
    const auto h = Simd<T>::low_half(v);
    __builtin_memcpy(p, &h, sizeof(h));
    return;
  }
  copy_prefix<T>(p, &v, n);
}

// Scratch memory aligned to a cache line. Rows of whole vectors then never straddle two lines; at
// the default allocator's 16-byte alignment every other 32-byte vector would.
template <typename T>
struct CacheLineAllocator {
  using value_type = T;
  static constexpr std::align_val_t kAlign{64};
  CacheLineAllocator() = default;
  template <typename U>
  CacheLineAllocator(const CacheLineAllocator<U>&) {}
  T* allocate(std::size_t n) { return static_cast<T*>(::operator new(n * sizeof(T), kAlign)); }
  void deallocate(T* p, std::size_t) { ::operator delete(p, kAlign); }
  template <typename U>
  bool operator==(const CacheLineAllocator<U>&) const { return true; }
  template <typename U>
  bool operator!=(const CacheLineAllocator<U>&) const { return false; }
};
template <typename T>
using ScratchVector = std::vector<T, CacheLineAllocator<T>>;

// Sum of the lanes by halving shuffles.
ASID_VEC_INLINE float hsum_lanes(f32x8 v) {
  const f32x4 a =
      __builtin_shufflevector(v, v, 0, 1, 2, 3) + __builtin_shufflevector(v, v, 4, 5, 6, 7);
  const f32x4 b = a + __builtin_shufflevector(a, a, 2, 3, 0, 1);
  return b[0] + b[1];
}
ASID_VEC_INLINE double hsum_lanes(f64x4 v) { return (v[0] + v[2]) + (v[1] + v[3]); }

template <typename T>
ASID_VEC_INLINE T hsum(vec_t<T> v) {
  return hsum_lanes(v);
}

// C[M x N] = C0 + op(A) B with op(A) = A (M x K, row stride lda) or, when TA, A^T (A stored
// K x M). B (K x N), C and C0 row-major; C0 null (zeros), C itself, or another matrix with N
// readable columns per row (stride ldc0); N a multiple of the vector width. Register block: RB
// rows x NV vectors of C.
template <bool TA, int RB, int NV, typename T>
inline void gemm_block(int64_t K, const T* A, int64_t lda, const T* B, int64_t ldb, T* C,
                       int64_t ldc, const T* C0, int64_t ldc0) {
  using V = vec_t<T>;
  constexpr int L = Simd<T>::lanes;
  V c[RB][NV];
  for (int r = 0; r < RB; ++r)
    for (int v = 0; v < NV; ++v) c[r][v] = C0 ? vload(C0 + r * ldc0 + v * L) : V{};
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

// Rows of C per register block for blocks NV vectors wide: enough independent accumulators to
// keep the FMA units busy (4-cycle latency, two units) within the 16 vector registers.
template <int NV>
constexpr int block_rows() {
  return NV == 1 ? 8 : (NV <= 3 ? 4 : 1);
}

template <bool TA, int NV, typename T>
inline void gemm_columns(int64_t M, int64_t K, const T* A, int64_t lda, const T* B, int64_t ldb,
                         T* C, int64_t ldc, const T* C0, int64_t ldc0) {
  constexpr int RB = block_rows<NV>();
  const int64_t row_step = TA ? 1 : lda;  // distance between consecutive rows of op(A)
  int64_t r = 0;
  for (; r + RB <= M; r += RB)
    gemm_block<TA, RB, NV>(K, A + r * row_step, lda, B, ldb, C + r * ldc, ldc,
                           C0 ? C0 + r * ldc0 : nullptr, ldc0);
  for (; r < M; ++r)
    gemm_block<TA, 1, NV>(K, A + r * row_step, lda, B, ldb, C + r * ldc, ldc,
                          C0 ? C0 + r * ldc0 : nullptr, ldc0);
}

// Column strips of 3 vectors (4 x 3 blocks: 12 accumulators, the most the 16 registers hold with
// their operands), then 2, then 1; rows of exactly 8 vectors with a short inner dimension (QK^T
// with d = 12) go whole, one row per block, where strips would reload A for too little work.
template <bool TA, typename T>
inline void gemm_op(int64_t M, int64_t N, int64_t K, const T* A, int64_t lda, const T* B,
                    int64_t ldb, T* C, int64_t ldc, const T* C0, int64_t ldc0) {
  constexpr int L = Simd<T>::lanes;
  if (K <= 16 && N == 8 * L)
    return gemm_columns<TA, 8>(M, K, A, lda, B, ldb, C, ldc, C0, ldc0);
  const auto start = [&](int64_t col) { return C0 ? C0 + col : nullptr; };
  int64_t j = 0;
  for (; j + 3 * L <= N; j += 3 * L)
    gemm_columns<TA, 3>(M, K, A, lda, B + j, ldb, C + j, ldc, start(j), ldc0);
  if (j + 2 * L <= N) {
    gemm_columns<TA, 2>(M, K, A, lda, B + j, ldb, C + j, ldc, start(j), ldc0);
    j += 2 * L;
  }
  if (j < N) gemm_columns<TA, 1>(M, K, A, lda, B + j, ldb, C + j, ldc, start(j), ldc0);
}

template <typename T>
struct NonDeduced {  // keeps a null C0 from taking part in deducing T
  using type = T;
};

// C = C0 + A B, A: M x K (C0 as in gemm_block).
template <typename T>
inline void gemm(int64_t M, int64_t N, int64_t K, const T* A, int64_t lda, const T* B, int64_t ldb,
                 T* C, int64_t ldc, const typename NonDeduced<T>::type* C0 = nullptr,
                 int64_t ldc0 = 0) {
  gemm_op<false>(M, N, K, A, lda, B, ldb, C, ldc, C0, ldc0);
}

// C = C0 + A^T B, A stored K x M.
template <typename T>
inline void gemm_at(int64_t M, int64_t N, int64_t K, const T* A, int64_t lda, const T* B,
                    int64_t ldb, T* C, int64_t ldc,
                    const typename NonDeduced<T>::type* C0 = nullptr, int64_t ldc0 = 0) {
  gemm_op<true>(M, N, K, A, lda, B, ldb, C, ldc, C0, ldc0);
}

// The polynomial with coefficients c (highest power first) at x, by Horner's rule.
template <int N>
ASID_VEC_INLINE f32x8 horner(f32x8 x, const float (&c)[N]) {
  f32x8 p = vsplat(c[0]);
  for (int i = 1; i < N; ++i) p = p * x + c[i];
  return p;
}

// exp(x) for x <= 0 (softmax after the max shift): Cody-Waite reduction x = n ln2 + r, a
// degree-6 polynomial for exp(r) on [-ln2/2, ln2/2] (near-minimax fit of the relative error,
// Horner), and 2^n added to the result's exponent bits (no separate multiply); 0 below -87, NaN
// stays NaN. At most 1.05 ulp from exp in double over [-87, 0].
ASID_VEC_INLINE f32x8 exp_nonpositive(f32x8 x) {
  const i32x8 underflow = x < -87.0f;  // all-ones lanes flush to 0
  const f32x8 lowest = vsplat(-87.0f);
  x = lowest > x ? lowest : x;  // a NaN x compares false and stays
  const float round_magic = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer n, whose
  const f32x8 t = x * 1.44269504088896341f + round_magic;  // two's complement is t's low bits
  const f32x8 n = t - round_magic;
  f32x8 r = x - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  static constexpr float kExp[] = {1.3843653723597527e-3f, 8.37415549904108e-3f,
                                   4.166800156235695e-2f,  1.6666431725025177e-1f,
                                   4.999999403953552e-1f,  1.0f, 1.0f};
  const f32x8 p = horner(r, kExp);
  // t << 23 shifts t's own exponent bits out and leaves n in the exponent field
  return (f32x8)(((u32x8)p + ((u32x8)t << 23)) & ~(u32x8)underflow);
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
  return hsum<float>(acc);
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
  T s = hsum<T>(acc);
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
