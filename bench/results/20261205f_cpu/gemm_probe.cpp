// Probe: the kernels' gemm (csrc/cpu/tile_math.h, AVX2 build) on 320-row products, one core.
// Build: g++ -O3 -std=c++20 -ffp-contract=fast -I../../../csrc -I. gemm_probe.cpp -o /tmp/gemm_probe; run: /tmp/gemm_probe K N
#include "cpu/isa_prologue.h"
#include "ops/depthwise_conv3x3.h"
#pragma GCC push_options
#pragma GCC target("avx2,fma")
#define ASID_CPU_ISA avx2
#define ASID_CPU_VECTOR_BYTES 32
#define ASID_CPU_VECTOR_REGISTERS 16
#include "cpu/row_ops.h"
#pragma GCC pop_options
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>
using namespace asid::cpu::avx2;
int main(int argc, char** argv) {
  const int64_t M = 320, K = atoi(argv[1]), N = atoi(argv[2]);
  std::vector<float> A(M * K), B(K * N), C(M * N);
  for (auto& x : A) x = 0.01f; for (auto& x : B) x = 0.02f;
  double best = 1e9;
  for (int rep = 0; rep < 50; ++rep) {
    auto t0 = std::chrono::steady_clock::now();
    for (int it = 0; it < 200; ++it) gemm(M, N, K, A.data(), K, B.data(), N, C.data(), N);
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / 200);
  }
  printf("M=%ld K=%ld N=%ld: %.1f GFLOP/s, %.2f FLOP/cycle @2GHz\n", M, K, N, 2.0 * M * N * K / best * 1e-9, 2.0 * M * N * K / best / 2e9);
}
