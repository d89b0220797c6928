// Probe: bf16 products (AVX512-BF16 vdpbf16ps, fp32 accumulation) against the project's fp32
// gemm microkernel, on the row shapes of the convolution chain (M image-row pixels x K -> N).
#include "cpu/isa_prologue.h"
#include "ops/depthwise_conv3x3.h"
#pragma GCC push_options
#pragma GCC target("avx512f,avx512dq,avx512bw,avx512vl,avx2,fma,avx512bf16")
#define ASID_CPU_ISA avx512
#define ASID_CPU_VECTOR_BYTES 64
#define ASID_CPU_VECTOR_REGISTERS 32
#include "cpu/row_ops.h"
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
using namespace asid::cpu::avx512;

// A (M x K fp32, row stride lda) -> Ap (M x K2 32-bit pairs of bf16: (a[2j], a[2j+1])), K2 = K/2
// rounded up (K padded to a multiple of 32 with zeros)
static void pack_a(int64_t M, int64_t K, const float* A, int64_t lda, uint32_t* Ap, int64_t K2) {
  for (int64_t m = 0; m < M; ++m) {
    for (int64_t k = 0; k < 2 * K2; k += 32) {
      const __mmask16 lo = k >= K ? 0 : (K - k >= 16 ? 0xffff : (1u << (K - k)) - 1);
      const __mmask16 hi = k + 16 >= K ? 0 : (K - k - 16 >= 16 ? 0xffff : (1u << (K - k - 16)) - 1);
      __m512 a0 = _mm512_maskz_loadu_ps(lo, A + m * lda + k);
      __m512 a1 = _mm512_maskz_loadu_ps(hi, A + m * lda + k + 16);
      __m512bh p = _mm512_cvtne2ps_pbh(a1, a0);
      const int64_t words = std::min<int64_t>(16, K2 - k / 2);
      _mm512_mask_storeu_epi32(Ap + m * K2 + k / 2, (__mmask16)((1u << words) - 1), (__m512i)p);
    }
  }
}
// B (K x N fp32) -> Bp (K2 x N pairs (b[2j][n], b[2j+1][n]))
static void pack_b(int64_t K, int64_t N, const float* B, int64_t ldb, uint32_t* Bp, int64_t K2) {
  auto bf = [](float f) { uint32_t u; memcpy(&u, &f, 4); u += 0x7fff + ((u >> 16) & 1); return u >> 16; };
  for (int64_t j = 0; j < K2; ++j)
    for (int64_t n = 0; n < N; ++n) {
      const uint32_t lo = 2 * j < K ? bf(B[2 * j * ldb + n]) : 0;
      const uint32_t hi = 2 * j + 1 < K ? bf(B[(2 * j + 1) * ldb + n]) : 0;
      Bp[j * N + n] = lo | (hi << 16);
    }
}
template <int RB, int NV>
static inline void block_bf16(int64_t K2, const uint32_t* Ap, const uint32_t* Bp, int64_t N,
                              float* C, int64_t ldc) {
  __m512 c[RB][NV];
  for (int r = 0; r < RB; ++r)
    for (int v = 0; v < NV; ++v) c[r][v] = _mm512_setzero_ps();
  for (int64_t j = 0; j < K2; ++j) {
    __m512bh b[NV];
    for (int v = 0; v < NV; ++v) b[v] = (__m512bh)_mm512_loadu_si512(Bp + j * N + 16 * v);
    for (int r = 0; r < RB; ++r) {
      const __m512bh a = (__m512bh)_mm512_set1_epi32(Ap[r * K2 + j]);
      for (int v = 0; v < NV; ++v) c[r][v] = _mm512_dpbf16_ps(c[r][v], a, b[v]);
    }
  }
  for (int r = 0; r < RB; ++r)
    for (int v = 0; v < NV; ++v) _mm512_storeu_ps(C + r * ldc + 16 * v, c[r][v]);
}
static void gemm_bf16(int64_t M, int64_t N, int64_t K2, const uint32_t* Ap, const uint32_t* Bp,
                      float* C, int64_t ldc) {
  int64_t j = 0;
  for (; j + 64 <= N; j += 64) {
    int64_t r = 0;
    for (; r + 6 <= M; r += 6) block_bf16<6, 4>(K2, Ap + r * K2, Bp + j, N, C + r * ldc + j, ldc);
    for (; r < M; ++r) block_bf16<1, 4>(K2, Ap + r * K2, Bp + j, N, C + r * ldc + j, ldc);
  }
  for (; j + 48 <= N; j += 48) {
    int64_t r = 0;
    for (; r + 8 <= M; r += 8) block_bf16<8, 3>(K2, Ap + r * K2, Bp + j, N, C + r * ldc + j, ldc);
    for (; r < M; ++r) block_bf16<1, 3>(K2, Ap + r * K2, Bp + j, N, C + r * ldc + j, ldc);
  }
  for (; j + 32 <= N; j += 32) {
    int64_t r = 0;
    for (; r + 8 <= M; r += 8) block_bf16<8, 2>(K2, Ap + r * K2, Bp + j, N, C + r * ldc + j, ldc);
    for (; r < M; ++r) block_bf16<1, 2>(K2, Ap + r * K2, Bp + j, N, C + r * ldc + j, ldc);
  }
  for (; j + 16 <= N; j += 16) {
    int64_t r = 0;
    for (; r + 8 <= M; r += 8) block_bf16<8, 1>(K2, Ap + r * K2, Bp + j, N, C + r * ldc + j, ldc);
    for (; r < M; ++r) block_bf16<1, 1>(K2, Ap + r * K2, Bp + j, N, C + r * ldc + j, ldc);
  }
}

int main(int argc, char** argv) {
  const int64_t M = atoi(argv[1]), K = atoi(argv[2]), N = atoi(argv[3]);
  const int64_t K2 = (K + 1) / 2;
  ScratchVector<float> A(M * K), B(K * N), C(M * N), C2(M * N);
  std::vector<uint32_t> Ap(M * K2), Bp(K2 * N);
  for (auto& v : A) v = rand() / float(RAND_MAX) - 0.5f;
  for (auto& v : B) v = rand() / float(RAND_MAX) - 0.5f;
  pack_b(K, N, B.data(), N, Bp.data(), K2);
  const int reps = 200000000 / (M * K * N) + 1;
  for (int variant = 0; variant < 3; ++variant)
    for (int trial = 0; trial < 3; ++trial) {
      auto t0 = std::chrono::steady_clock::now();
      for (int i = 0; i < reps; ++i) {
        if (variant == 0) {
          gemm(M, N, K, A.data(), K, B.data(), N, C.data(), N);
        } else {
          if (variant == 2) pack_a(M, K, A.data(), K, Ap.data(), K2);
          gemm_bf16(M, N, K2, Ap.data(), Bp.data(), C2.data(), N);
        }
      }
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      if (variant == 1 && trial == 0) pack_a(M, K, A.data(), K, Ap.data(), K2);
      if (trial == 2)
        printf("%-22s M=%ld K=%ld N=%ld: %.1f GF/s (1 core)\n",
               variant == 0 ? "fp32 gemm" : variant == 1 ? "bf16 products" : "bf16 incl. packing A",
               M, K, N, 2.0 * M * K * N * reps / s / 1e9);
    }
  double err = 0, ref = 0;
  for (int64_t i = 0; i < M * N; ++i) { err = std::max(err, (double)std::abs(C[i] - C2[i])); ref = std::max(ref, (double)std::abs(C[i])); }
  printf("max |bf16 - fp32| / max |fp32| = %.2e\n", err / ref);
}
