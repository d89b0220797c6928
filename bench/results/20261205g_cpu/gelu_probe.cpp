// Probe: the CPU kernels' float GELU (csrc/cpu/channel_math.h) in its AVX2 build on one
// L1-resident row of 320 pixels x 48 channels, one core, against a multiply-and-store pass over
// the same row (the loop's load/store floor). The variants in NOTES.md were throwaway edits of
// erf_rational compiled into this probe (not kept).
// Build from this folder:
//   g++ -O3 -std=c++20 -ffp-contract=fast -I../../../csrc gelu_probe.cpp -o /tmp/gelu_probe
#include "cpu/isa_prologue.h"
#pragma GCC push_options
#pragma GCC target("avx2,fma")
#define ASID_CPU_ISA avx2
#define ASID_CPU_VECTOR_BYTES 32
#define ASID_CPU_VECTOR_REGISTERS 16
#include "cpu/channel_math.h"
#pragma GCC pop_options
#include <chrono>
#include <cstdio>
#include <vector>

using namespace asid::cpu::avx2;

template <bool GELU>
__attribute__((target("avx2,fma"), noinline)) void row(const float* x, float* y, int n) {
  for (int i = 0; i < n; i += 8) {
    const f32v v = vload(x + i);
    vstore(y + i, GELU ? gelu(v) : v * 1.0001f);
  }
}

int main() {
  const int n = 48 * 320;
  std::vector<float> x(n), y(n);
  for (int i = 0; i < n; ++i) x[i] = (i % 997) / 997.0f * 12 - 6;  // [-6, 6)
  for (bool gelu_pass : {true, false}) {
    double best = 1e9;  // seconds per row, best of 50 batches of 100 rows
    for (int rep = 0; rep < 50; ++rep) {
      const auto t0 = std::chrono::steady_clock::now();
      for (int it = 0; it < 100; ++it) gelu_pass ? row<true>(x.data(), y.data(), n)
                                                 : row<false>(x.data(), y.data(), n);
      const std::chrono::duration<double> t = std::chrono::steady_clock::now() - t0;
      best = std::min(best, t.count() / 100);
    }
    std::printf("%s: %.2f ns per 8-lane vector\n", gelu_pass ? "gelu" : "multiply",
                best / (n / 8) * 1e9);
  }
}
