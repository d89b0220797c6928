// Probe: the depthwise row (csrc/cpu/row_ops.h dw_row, AVX2 build) against dw_row_variants.h on one
// L1-resident tile row, one core. Build from this folder: g++ -O3 -std=c++20 -ffp-contract=fast -I../../../csrc -I. dw_row_probe.cpp -o /tmp/dw_row_probe
// Run: /tmp/dw_row_probe C [W]
#include "cpu/isa_prologue.h"
#include "ops/depthwise_conv3x3.h"
#pragma GCC push_options
#pragma GCC target("avx2,fma")
#define ASID_CPU_ISA avx2
#define ASID_CPU_VECTOR_BYTES 32
#define ASID_CPU_VECTOR_REGISTERS 16
#include "cpu/row_ops.h"
#include "dw_row_variants.h"
#pragma GCC pop_options
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>
using namespace asid::cpu::avx2;
template <typename Fn>
double bench(Fn fn) {
  double best = 1e9;
  for (int rep = 0; rep < 30; ++rep) {
    auto t0 = std::chrono::steady_clock::now();
    for (int it = 0; it < 100; ++it) fn();
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / 100);
  }
  return best;
}
int main(int argc, char** argv) {
  const int64_t W = argc > 2 ? atoi(argv[2]) : 320, C = argc > 1 ? atoi(argv[1]) : 96;
  std::vector<float> buf(3 * W * C + 64), taps(9 * C + 16), bias(C + 16), d0(W * C), d1(W * C), d2(W * C);
  for (size_t i = 0; i < buf.size(); ++i) buf[i] = ((i * 7919) % 101) * 0.01f - 0.5f;
  for (size_t i = 0; i < taps.size(); ++i) taps[i] = ((i * 31) % 17) * 0.1f - 0.8f;
  for (size_t i = 0; i < bias.size(); ++i) bias[i] = i * 0.01f;
  const float* rows[3] = {buf.data(), buf.data() + W * C, buf.data() + 2 * W * C};
  int64_t ldt = C;
  auto f0 = [&] { dw_row<float>(rows, C, W, C, taps.data(), ldt, bias.data(), d0.data(), C); };
  auto f1 = [&] { dw_row_v1<float>(rows, C, W, C, taps.data(), ldt, bias.data(), d1.data(), C); };
  auto f2 = [&] { dw_row_v2<float>(rows, C, W, C, taps.data(), ldt, bias.data(), d2.data(), C); };
  double t0 = 1e9, t1 = 1e9, t2 = 1e9;
  for (int round = 0; round < 3; ++round) { t0 = std::min(t0, bench(f0)); t1 = std::min(t1, bench(f1)); t2 = std::min(t2, bench(f2)); }
  double e1 = 0, e2 = 0;
  for (int64_t i = 0; i < W * C; ++i) { e1 = std::max(e1, (double)std::abs(d1[i] - d0[i])); e2 = std::max(e2, (double)std::abs(d2[i] - d0[i])); }
  const double v = W * std::ceil(C / 8.0);
  printf("C=%ld W=%ld cycles/vector @2GHz: cur %.2f  v1 %.2f  v2 %.2f   maxdiff %.2g %.2g\n", C, W,
         t0 / v * 2e9, t1 / v * 2e9, t2 / v * 2e9, e1, e2);
}
