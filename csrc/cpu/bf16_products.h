// Row-major products with bf16 inputs and float32 accumulation (AVX512-BF16's vdpbf16ps: each
// float32 lane adds a pair of bf16 products), for the products of the forward ops (1x1
// convolutions, the linear map, the attention products) when torch allows reduced-precision
// float32 matmuls on the CPU (torch.backends.mkldnn.matmul.fp32_precision = "bf16";
// ops/bf16_products.h decides).
//
// Operands as pairs: 32-bit words holding two bf16 values, the lower half first. A (M x K float)
// becomes M rows of K2 = ceil(K / 2) words, word j = (a[2j], a[2j + 1]); B (K x N) K2 rows of
// words (b[2j][n], b[2j + 1][n]): weights packed once per op call (ops/bf16_products.h:
// bf16_pairs), tiles the kernel computed packed per product (pack_bf16_pairs).
//
// Only the AVX-512 build (x86-64, whose target includes avx512bf16) compiles them:
// ASID_CPU_BF16_PRODUCTS is defined there; `products` and `tile_products` (at the end) are what
// the kernels call in every build. Included only by the kernel headers.
#pragma once

#include <algorithm>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "cpu/tile_math.h"

#if ASID_CPU_VECTOR_BYTES == 64 && defined(__x86_64__)
#define ASID_CPU_BF16_PRODUCTS 1

namespace asid {
namespace cpu {
namespace ASID_CPU_ISA {

// Rows of A as pairs (rounded to nearest even), zero padded to K2 words.
inline void pack_bf16_rows(int64_t M, int64_t K, const float* A, int64_t lda, uint32_t* Ap,
                           int64_t K2) {
  const auto first = [](int64_t n) {  // a mask of the first n of 16 lanes (n clamped to 0..16)
    n = std::min<int64_t>(16, std::max<int64_t>(0, n));
    return static_cast<__mmask16>((1u << n) - 1);
  };
  for (int64_t m = 0; m < M; ++m)
    for (int64_t k = 0; k < 2 * K2; k += 32) {
      const __m512 lo = _mm512_maskz_loadu_ps(first(K - k), A + m * lda + k);
      const __m512 hi = _mm512_maskz_loadu_ps(first(K - k - 16), A + m * lda + k + 16);
      _mm512_mask_storeu_epi32(Ap + m * K2 + k / 2, first(K2 - k / 2),
                               (__m512i)_mm512_cvtne2ps_pbh(hi, lo));
    }
}

// Rows of B (K x N float, row stride ldb; N a multiple of 16) as pairs: K2 = ceil(K / 2) rows of
// N words (row stride ldp), word (j, n) = (b[2j][n], b[2j + 1][n]), a zero row padding an odd K.
// For a B the kernel computes itself (ops/bf16_products.h: bf16_pairs packs the weights).
inline void pack_bf16_pairs(int64_t K, int64_t N, const float* B, int64_t ldb, uint32_t* Bp,
                            int64_t ldp) {
  // 16-bit lane 2i of a word vector takes lane i of the even row, lane 2i + 1 lane i of the odd
  // one (lanes 16 + i of the converted pair of rows)
  alignas(64) static const uint16_t kInterleave[32] = {
      0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23,
      8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31};
  const __m512i interleave = _mm512_load_si512(kInterleave);
  for (int64_t j = 0; 2 * j < K; ++j)
    for (int64_t n = 0; n < N; n += 16) {
      const float* even = B + 2 * j * ldb + n;
      const __m512 odd = 2 * j + 1 < K ? _mm512_loadu_ps(even + ldb) : _mm512_setzero_ps();
      const __m512i rows = (__m512i)_mm512_cvtne2ps_pbh(odd, _mm512_loadu_ps(even));
      _mm512_storeu_si512(Bp + j * ldp + n, _mm512_permutexvar_epi16(interleave, rows));
    }
}

// C[RB x 16 NV] = C0 + Ap Bp over K2 words; register blocks as gemm_block's.
template <int RB, int NV>
inline void gemm_bf16_block(int64_t K2, const uint32_t* Ap, const uint32_t* Bp, int64_t ldb,
                            float* C, int64_t ldc, const float* C0, int64_t ldc0) {
  __m512 c[RB][NV];
  for (int r = 0; r < RB; ++r)
    for (int v = 0; v < NV; ++v)
      c[r][v] = C0 ? _mm512_loadu_ps(C0 + r * ldc0 + 16 * v) : _mm512_setzero_ps();
  for (int64_t j = 0; j < K2; ++j) {
    __m512bh b[NV];
    for (int v = 0; v < NV; ++v) b[v] = (__m512bh)_mm512_loadu_si512(Bp + j * ldb + 16 * v);
    for (int r = 0; r < RB; ++r) {
      const __m512bh a = (__m512bh)_mm512_set1_epi32(static_cast<int>(Ap[r * K2 + j]));
      for (int v = 0; v < NV; ++v) c[r][v] = _mm512_dpbf16_ps(c[r][v], a, b[v]);
    }
  }
  for (int r = 0; r < RB; ++r)
    for (int v = 0; v < NV; ++v) _mm512_storeu_ps(C + r * ldc + 16 * v, c[r][v]);
}

// C[M x N] = C0 + A B with bf16 products: A (M x K float, row stride lda) packed here into a
// per-thread buffer, Bp the pairs of B (K2 x ldb words); N a multiple of 16; C0 as gemm's.
inline void gemm_bf16(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda,
                      const uint32_t* Bp, int64_t ldb, float* C, int64_t ldc,
                      const float* C0 = nullptr, int64_t ldc0 = 0) {
  thread_local std::vector<uint32_t> packed;
  const int64_t K2 = (K + 1) / 2;
  if (static_cast<int64_t>(packed.size()) < M * K2) packed.resize(M * K2);
  pack_bf16_rows(M, K, A, lda, packed.data(), K2);
  for_each_column_strip<16>(N, [&](auto vectors, int64_t j) {  // columns [j, j + 16 vectors)
    constexpr int NV = decltype(vectors)::value;
    for_each_row_block<NV>(M, [&](auto rows, int64_t r) {
      gemm_bf16_block<decltype(rows)::value, NV>(K2, packed.data() + r * K2, Bp + j, ldb,
                                                 C + r * ldc + j, ldc,
                                                 C0 ? C0 + r * ldc0 + j : nullptr, ldc0);
    });
  });
}

}  // namespace ASID_CPU_ISA
}  // namespace cpu
}  // namespace asid

#endif

namespace asid {
namespace cpu {
namespace ASID_CPU_ISA {

// C = C0 + A B (as gemm's): with bf16 products where B's pairs are given (float32 in a build
// that has them), else with B in T.
template <typename T>
void products(int64_t M, int64_t N, int64_t K, const T* A, int64_t lda, const T* B,
              const uint32_t* pairs, int64_t ldb, T* C, int64_t ldc, const T* C0 = nullptr,
              int64_t ldc0 = 0) {
#ifdef ASID_CPU_BF16_PRODUCTS
  if constexpr (std::is_same_v<T, float>)
    if (pairs) return gemm_bf16(M, N, K, A, lda, pairs, ldb, C, ldc, C0, ldc0);
#endif
  gemm(M, N, K, A, lda, B, ldb, C, ldc, C0, ldc0);
}

// C = C0 + A B (as gemm's) for a B the kernel computed (N a multiple of the vector width): with
// bf16 products where `bf16` (float32 in a build that has them; B packed per call into a
// per-thread buffer), else in T.
template <typename T>
void tile_products(bool bf16, int64_t M, int64_t N, int64_t K, const T* A, int64_t lda,
                   const T* B, int64_t ldb, T* C, int64_t ldc, const T* C0 = nullptr,
                   int64_t ldc0 = 0) {
#ifdef ASID_CPU_BF16_PRODUCTS
  if constexpr (std::is_same_v<T, float>)
    if (bf16) {
      thread_local std::vector<uint32_t> pairs;
      const int64_t K2 = (K + 1) / 2;
      if (static_cast<int64_t>(pairs.size()) < K2 * N) pairs.resize(K2 * N);
      pack_bf16_pairs(K, N, B, ldb, pairs.data(), N);
      return gemm_bf16(M, N, K, A, lda, pairs.data(), N, C, ldc, C0, ldc0);
    }
#endif
  gemm(M, N, K, A, lda, B, ldb, C, ldc, C0, ldc0);
}

}  // namespace ASID_CPU_ISA
}  // namespace cpu
}  // namespace asid
