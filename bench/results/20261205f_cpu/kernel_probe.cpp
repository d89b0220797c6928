// Probes of CPU kernel building blocks in their AVX2 build, one core, operands in cache:
//   kernel_probe dw C [W]   the depthwise row (csrc/cpu/row_ops.h dw_row) on one image row
//   kernel_probe gemm K N   the kernels' gemm (csrc/cpu/tile_math.h) on 320 x K times K x N
//   kernel_probe gelu       the float GELU (csrc/cpu/channel_math.h) on one 320 x 48 row, beside
//                           a multiply-and-store pass over it (the loop's load/store floor)
//                           (added by ../20261205g_cpu)
// Build from this folder:
//   g++ -O3 -std=c++20 -ffp-contract=fast -I../../../csrc kernel_probe.cpp -o /tmp/kernel_probe
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
#include <cstring>
#include <vector>

using namespace asid::cpu::avx2;

// Best seconds per call of fn over 30 batches of 200 calls.
template <typename Fn>
double best_seconds(const Fn& fn) {
  double best = 1e9;
  for (int rep = 0; rep < 30; ++rep) {
    const auto t0 = std::chrono::steady_clock::now();
    for (int it = 0; it < 200; ++it) fn();
    const std::chrono::duration<double> t = std::chrono::steady_clock::now() - t0;
    best = std::min(best, t.count() / 200);
  }
  return best;
}

// y = GELU(x), or x * 1.0001 (the loop's floor), over n floats (n a multiple of 8).
__attribute__((target("avx2,fma"), noinline)) void gelu_row(bool gelu_pass, const float* x,
                                                           int64_t n, float* y) {
  for (int64_t i = 0; i < n; i += 8) {
    const f32v v = vload(x + i);
    vstore(y + i, gelu_pass ? gelu(v) : v * 1.0001f);
  }
}

int main(int argc, char** argv) {
  if (argc >= 3 && !std::strcmp(argv[1], "dw")) {
    const int64_t C = std::atoi(argv[2]), W = argc > 3 ? std::atoi(argv[3]) : 320;
    std::vector<float> x(3 * W * C + 64, 0.5f), taps(9 * C + 16, 0.1f), bias(C + 16, 0.f),
        out(W * C);
    const float* rows[3] = {x.data(), x.data() + W * C, x.data() + 2 * W * C};
    const double t = best_seconds(
        [&] { dw_row<float>(rows, C, W, C, taps.data(), C, bias.data(), out.data(), C); });
    std::printf("dw_row C=%ld W=%ld: %.1f ns per 8-lane output vector\n", C, W,
                t / (W * ((C + 7) / 8)) * 1e9);
    return 0;
  }
  if (argc >= 4 && !std::strcmp(argv[1], "gemm")) {
    const int64_t M = 320, K = std::atoi(argv[2]), N = std::atoi(argv[3]);
    std::vector<float> A(M * K, 0.01f), B(K * N, 0.02f), C(M * N);
    const double t = best_seconds([&] { gemm(M, N, K, A.data(), K, B.data(), N, C.data(), N); });
    std::printf("gemm M=%ld K=%ld N=%ld: %.1f GFLOP/s\n", M, K, N, 2.0 * M * N * K / t * 1e-9);
    return 0;
  }
  if (argc >= 2 && !std::strcmp(argv[1], "gelu")) {
    const int64_t n = 320 * 48;
    std::vector<float> x(n), y(n);
    for (int64_t i = 0; i < n; ++i) x[i] = (i % 997) / 997.0f * 12 - 6;  // [-6, 6)
    for (const bool gelu_pass : {true, false}) {
      const double t = best_seconds([&] { gelu_row(gelu_pass, x.data(), n, y.data()); });
      std::printf("%s: %.2f ns per 8-lane vector\n", gelu_pass ? "gelu" : "multiply",
                  t / (n / 8) * 1e9);
    }
    return 0;
  }
  std::fprintf(stderr,
               "usage: kernel_probe dw C [W] | kernel_probe gemm K N | kernel_probe gelu\n");
  return 2;
}
