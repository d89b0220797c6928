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
#include <type_traits>
#include <utility>
#include <vector>

// Small vector helpers are forced inline: an out-of-line call would pass its vectors through
// memory and clobber every vector register of the caller's loop (GCC's inliner gives up on them
// inside the larger kernels).
#define ASID_VEC_INLINE inline __attribute__((always_inline))

namespace asid {
namespace cpu {
namespace ASID_CPU_ISA {

// The vector width and register count of the instruction set being built (setup.py defines them
// with ASID_CPU_ISA): 32-byte vectors and 16 registers (baseline, AVX2) or 64 and 32 (AVX-512).
constexpr int kVectorBytes = ASID_CPU_VECTOR_BYTES;
constexpr int kVectorRegisters = ASID_CPU_VECTOR_REGISTERS;

template <typename T, int N>
struct VectorOf {
  typedef T type __attribute__((vector_size(sizeof(T) * N)));
  typedef T unaligned __attribute__((vector_size(sizeof(T) * N), aligned(sizeof(T))));
};
// N lanes of T (a GCC/Clang vector extension type).
template <typename T, int N>
using vec_n = typename VectorOf<T, N>::type;

template <typename T>
struct SameSizeInt;
template <>
struct SameSizeInt<float> {
  using type = int32_t;
};
template <>
struct SameSizeInt<double> {
  using type = int64_t;
};

// __builtin_shufflevector(a, b, F::at(0), ..., F::at(M - 1)): lanes of the result taken from the
// lanes of a (indices below a's width) and b (the others) that F names.
template <typename F, typename R, typename V, size_t... I>
ASID_VEC_INLINE R shuffle_with(V a, V b, std::index_sequence<I...>) {
  return __builtin_shufflevector(a, b, F::at(I)...);
}
template <typename F, int M, typename V>
ASID_VEC_INLINE auto shuffle(V a, V b) {
  using R = vec_n<std::remove_reference_t<decltype(a[0])>, M>;
  return shuffle_with<F, R>(a, b, std::make_index_sequence<M>{});
}

template <int I0>
struct FromLane {  // lanes I0, I0 + 1, ...
  static constexpr int at(size_t i) { return I0 + int(i); }
};

template <typename T>
struct Simd {
  static constexpr int lanes = kVectorBytes / int(sizeof(T));
  template <size_t... I>
  static ASID_VEC_INLINE vec_n<T, lanes> splat_lanes(T x, std::index_sequence<I...>) {
    return vec_n<T, lanes>{((void)I, x)...};  // x in every lane (V{} + x would add +0.0 first)
  }
  using V = vec_n<T, lanes>;
  using Half = vec_n<T, lanes / 2>;
  using Bits = vec_n<typename SameSizeInt<T>::type, lanes>;  // comparison results, bit casts
  static V splat(T x) { return splat_lanes(x, std::make_index_sequence<lanes>{}); }
  // h in the low half, zeros in the high half
  static V widen(Half h) { return shuffle<FromLane<0>, lanes>(h, Half{}); }
  static Half low_half(V v) { return shuffle<FromLane<0>, lanes / 2>(v, v); }
  static Half high_half(V v) { return shuffle<FromLane<lanes / 2>, lanes / 2>(v, v); }
};
template <typename T>
using vec_t = typename Simd<T>::V;

// x rounded up to whole float vectors: the row length of the kernels' tiles and scratch rows
// (whole vectors of double too).
constexpr int64_t pad_lanes(int64_t x) {
  return (x + Simd<float>::lanes - 1) / Simd<float>::lanes * Simd<float>::lanes;
}

template <typename T>
ASID_VEC_INLINE vec_t<T> vload(const T* p) {
  vec_t<T> v;
  __builtin_memcpy(&v, p, sizeof(v));
  return v;
}
// Stored through a vector of T (aliasing T only, unlike a memcpy, which may alias any object):
// the compiler then keeps a loop's pointers and strides in registers across its stores.
template <typename T>
ASID_VEC_INLINE void vstore(T* p, vec_t<T> v) {
  *reinterpret_cast<typename VectorOf<T, Simd<T>::lanes>::unaligned*>(p) = v;
}
template <typename T>
ASID_VEC_INLINE vec_t<T> vsplat(T x) {
  return Simd<T>::splat(x);
}
template <typename T>
constexpr int lanes() {
  return Simd<T>::lanes;
}

// memcpy of the first n (< lanes <= 16) elements with a compile-time size per case (no library
// call); cases of lanes or more are never reached and compiled out.
template <typename T>
ASID_VEC_INLINE void copy_prefix(void* dst, const void* src, int64_t n) {
  switch (n) {
#define ASID_COPY_CASE(k)                                                  \
  case k:                                                                  \
    if constexpr (k < lanes<T>()) __builtin_memcpy(dst, src, k * sizeof(T)); \
    return;
    ASID_COPY_CASE(1) ASID_COPY_CASE(2) ASID_COPY_CASE(3) ASID_COPY_CASE(4)
    ASID_COPY_CASE(5) ASID_COPY_CASE(6) ASID_COPY_CASE(7) ASID_COPY_CASE(8)
    ASID_COPY_CASE(9) ASID_COPY_CASE(10) ASID_COPY_CASE(11) ASID_COPY_CASE(12)
    ASID_COPY_CASE(13) ASID_COPY_CASE(14) ASID_COPY_CASE(15)
#undef ASID_COPY_CASE
    default:
      return;
  }
}

#if ASID_CPU_VECTOR_BYTES == 64
// 64-byte vectors (AVX-512): partial vectors are masked loads and stores (one instruction; a
// masked load does not touch the lanes it leaves out).
ASID_VEC_INLINE vec_t<float> masked_load(const float* p, int64_t n) {
  return (vec_t<float>)_mm512_maskz_loadu_ps(__mmask16((1u << n) - 1), p);
}
ASID_VEC_INLINE vec_t<double> masked_load(const double* p, int64_t n) {
  return (vec_t<double>)_mm512_maskz_loadu_pd(__mmask8((1u << n) - 1), p);
}
ASID_VEC_INLINE void masked_store(float* p, vec_t<float> v, int64_t n) {
  _mm512_mask_storeu_ps(p, __mmask16((1u << n) - 1), (__m512)v);
}
ASID_VEC_INLINE void masked_store(double* p, vec_t<double> v, int64_t n) {
  _mm512_mask_storeu_pd(p, __mmask8((1u << n) - 1), (__m512d)v);
}
#endif

// The first n (<= lanes) elements of p, zeros after them. 64-byte vectors: a masked load. 32-byte
// vectors: a half vector (the channel tail of d = 12 and 36 in float) is one register load; other
// partial vectors go through memory, whose narrow stores then wide load stall the load for a
// dozen cycles.
template <typename T>
ASID_VEC_INLINE vec_t<T> load_n(const T* p, int64_t n) {
  if (n == lanes<T>()) return vload(p);
#if ASID_CPU_VECTOR_BYTES == 64
  return masked_load(p, n);
#else
  if (2 * n == lanes<T>()) {
    typename Simd<T>::Half h;
    __builtin_memcpy(&h, p, sizeof(h));
    return Simd<T>::widen(h);
  }
  vec_t<T> v{};
  copy_prefix<T>(&v, p, n);
  return v;
#endif
}

// Stores the first n (<= lanes) elements of v.
template <typename T>
ASID_VEC_INLINE void store_n(T* p, vec_t<T> v, int64_t n) {
  if (n == lanes<T>()) return vstore(p, v);
#if ASID_CPU_VECTOR_BYTES == 64
  masked_store(p, v, n);
#else
  if (2 * n == lanes<T>()) {
    const auto h = Simd<T>::low_half(v);
    __builtin_memcpy(p, &h, sizeof(h));
    return;
  }
  copy_prefix<T>(p, &v, n);
#endif
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
template <typename V>
ASID_VEC_INLINE auto hsum_lanes(V v) {
  constexpr int L = sizeof(V) / sizeof(v[0]);
  if constexpr (L == 2) {
    return v[0] + v[1];
  } else {
    return hsum_lanes(shuffle<FromLane<0>, L / 2>(v, v) + shuffle<FromLane<L / 2>, L / 2>(v, v));
  }
}

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
// keep the FMA units busy (4-cycle latency, two units) while RB x NV accumulators, NV vectors of
// B and a broadcast of A fit the vector registers.
template <int NV>
constexpr int block_rows() {
  if constexpr (kVectorRegisters >= 32) {
    return NV == 1 ? 8 : (NV <= 3 ? 8 : (NV == 4 ? 6 : 1));
  } else {
    return NV == 1 ? 8 : (NV <= 3 ? 4 : 1);
  }
}

// The widest column strip of a product, in vectors: 3 with 16 registers (4 x 3 blocks: 12
// accumulators), 4 with 32 (6 x 4 blocks).
constexpr int kStripVectors = kVectorRegisters >= 32 ? 4 : 3;

// The register blocks of a column strip NV vectors wide, M rows: block(rows, r) for rows
// (std::integral_constant<int, RB> or <int, 1>) starting at row r, RB = block_rows<NV>() rows at
// a time, then single rows for the rest. Every product's kernel (float or bf16) blocks this way.
template <int NV, typename F>
inline void for_each_row_block(int64_t M, const F& block) {
  constexpr int RB = block_rows<NV>();
  int64_t r = 0;
  for (; r + RB <= M; r += RB) block(std::integral_constant<int, RB>{}, r);
  for (; r < M; ++r) block(std::integral_constant<int, 1>{}, r);
}

// The column strips of N columns (a multiple of L lanes): strip(vectors, j) for strips of
// kStripVectors vectors (std::integral_constant<int, NV>) starting at column j, then one
// narrower strip for the rest.
template <int L, typename F>
inline void for_each_column_strip(int64_t N, const F& strip) {
  int64_t j = 0;
  for (; j + kStripVectors * L <= N; j += kStripVectors * L)
    strip(std::integral_constant<int, kStripVectors>{}, j);
  const int64_t left = (N - j) / L;
  if (left == 3) strip(std::integral_constant<int, 3>{}, j);
  if (left == 2) strip(std::integral_constant<int, 2>{}, j);
  if (left == 1) strip(std::integral_constant<int, 1>{}, j);
}

template <bool TA, int NV, typename T>
inline void gemm_columns(int64_t M, int64_t K, const T* A, int64_t lda, const T* B, int64_t ldb,
                         T* C, int64_t ldc, const T* C0, int64_t ldc0) {
  const int64_t row_step = TA ? 1 : lda;  // distance between consecutive rows of op(A)
  for_each_row_block<NV>(M, [&](auto rows, int64_t r) {
    gemm_block<TA, decltype(rows)::value, NV>(K, A + r * row_step, lda, B, ldb, C + r * ldc, ldc,
                                              C0 ? C0 + r * ldc0 : nullptr, ldc0);
  });
}

// Column strips (for_each_column_strip); rows of exactly 8 vectors with a short inner dimension
// (QK^T with d = 12 in 32-byte vectors) go whole, one row per block, where strips would reload A
// for too little work.
template <bool TA, typename T>
inline void gemm_op(int64_t M, int64_t N, int64_t K, const T* A, int64_t lda, const T* B,
                    int64_t ldb, T* C, int64_t ldc, const T* C0, int64_t ldc0) {
  constexpr int L = Simd<T>::lanes;
  if (kVectorRegisters < 32 && K <= 16 && N == 8 * L)
    return gemm_columns<TA, 8>(M, K, A, lda, B, ldb, C, ldc, C0, ldc0);
  for_each_column_strip<L>(N, [&](auto vectors, int64_t j) {
    gemm_columns<TA, decltype(vectors)::value>(M, K, A, lda, B + j, ldb, C + j, ldc,
                                               C0 ? C0 + j : nullptr, ldc0);
  });
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
template <int N, typename V>
ASID_VEC_INLINE V horner(V x, const float (&c)[N]) {
  V p = V{} + c[0];  // a constant: the + 0.0 folds away
  for (int i = 1; i < N; ++i) p = p * x + c[i];
  return p;
}

using f32v = vec_t<float>;

// exp(x) for x <= 0 (softmax after the max shift): Cody-Waite reduction x = n ln2 + r, a
// degree-6 polynomial for exp(r) on [-ln2/2, ln2/2] (near-minimax fit of the relative error,
// Horner), and 2^n added to the result's exponent bits (no separate multiply); 0 below -87, NaN
// stays NaN. At most 1.05 ulp from exp in double over [-87, 0].
ASID_VEC_INLINE f32v exp_nonpositive(f32v x) {
  using U = vec_n<uint32_t, Simd<float>::lanes>;
  const auto underflow = x < -87.0f;  // all-ones lanes flush to 0
  const f32v lowest = vsplat(-87.0f);
  x = lowest > x ? lowest : x;  // a NaN x compares false and stays
  const float round_magic = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer n, whose
  const f32v t = x * 1.44269504088896341f + round_magic;  // two's complement is t's low bits
  const f32v n = t - round_magic;
  f32v r = x - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  static constexpr float kExp[] = {1.3843653723597527e-3f, 8.37415549904108e-3f,
                                   4.166800156235695e-2f,  1.6666431725025177e-1f,
                                   4.999999403953552e-1f,  1.0f, 1.0f};
  const f32v p = horner(r, kExp);
  // t << 23 shifts t's own exponent bits out and leaves n in the exponent field
  return (f32v)(((U)p + ((U)t << 23)) & ~(U)underflow);
}

// x[i] = exp(x[i] - shift) for i < n; returns the sum. float: vector exp; double: libm.
inline float exp_shifted(float* x, int64_t n, float shift) {
  constexpr int L = Simd<float>::lanes;
  f32v acc{};
  int64_t i = 0;
  for (; i + L <= n; i += L) {
    const f32v e = exp_nonpositive(vload(x + i) - shift);
    vstore(x + i, e);
    acc += e;
  }
  if (i < n) {  // tail: pad one vector with -inf (exp -> 0)
    float tail[L];
    for (int t = 0; t < L; ++t) tail[t] = i + t < n ? x[i + t] : -INFINITY;
    const f32v e = exp_nonpositive(vload(tail) - shift);
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

}  // namespace ASID_CPU_ISA
}  // namespace cpu
}  // namespace asid
