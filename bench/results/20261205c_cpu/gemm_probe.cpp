// The CPU kernels' float GEMM (csrc/cpu/tile_math.h, AVX-512 build) on one thread with every
// operand in L1: GFLOP/s for C = A B (ta 0) or C += A^T B (ta 1, acc 1), the shapes of the
// chains' per-row products (M = 64 pixels of a row, or the weight gradient's M x N with K = 64).
//   g++ -O3 -ffp-contract=fast -fno-wrapv -Wno-psabi -std=c++17 -I csrc gemm_probe.cpp -o gemm
//   ./gemm M N K [ta] [acc]
#include "cpu/isa_prologue.h"
#pragma GCC push_options
#pragma GCC target("avx512f,avx512dq,avx512bw,avx512vl,avx2,fma,avx512bf16")
#define ASID_CPU_ISA avx512
#define ASID_CPU_VECTOR_BYTES 64
#define ASID_CPU_VECTOR_REGISTERS 32
#include "cpu/tile_math.h"
#include <chrono>
#include <cstdio>
#include <cstdlib>
using namespace asid::cpu::avx512;
int main(int argc, char** argv) {
  const long M = atol(argv[1]), N = atol(argv[2]), K = atol(argv[3]);
  const int ta = argc > 4 ? atoi(argv[4]) : 0, acc = argc > 5 ? atoi(argv[5]) : 0;
  ScratchVector<float> A(M * K + 64), B(K * N + 64), C(M * N + 64);
  for (auto& v : A) v = rand() / float(RAND_MAX);
  for (auto& v : B) v = rand() / float(RAND_MAX);
  const long reps = std::max(1L, long(4e9 / (2.0 * M * N * K)));
  double best = 1e9;
  for (int t = 0; t < 5; ++t) {
    auto t0 = std::chrono::steady_clock::now();
    for (long r = 0; r < reps; ++r) {
      if (ta) gemm_at(M, N, K, A.data(), M, B.data(), N, C.data(), N, acc ? C.data() : nullptr, N);
      else gemm(M, N, K, A.data(), K, B.data(), N, C.data(), N, acc ? C.data() : nullptr, N);
      asm volatile("" ::: "memory");
    }
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    best = std::min(best, s);
  }
  printf("M=%ld N=%ld K=%ld ta=%d acc=%d: %.1f GFLOP/s\n", M, N, K, ta, acc, 2.0 * M * N * K * reps / best / 1e9);
}
#pragma GCC pop_options
