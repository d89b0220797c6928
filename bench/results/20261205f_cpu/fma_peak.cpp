// Probe: one core's FMA peak (12 independent 8-lane FMA chains, no memory traffic).
// Build: g++ -O3 -mavx2 -mfma fma_peak.cpp -o /tmp/fma_peak
#include <immintrin.h>

#include <algorithm>
#include <chrono>
#include <cstdio>

int main() {
  __m256 a[12];
  for (int i = 0; i < 12; ++i) a[i] = _mm256_set1_ps(i * 0.001f);
  const __m256 b = _mm256_set1_ps(0.999f), c = _mm256_set1_ps(0.0001f);
  const long n = 20000000;
  double best = 1e9;
  for (int r = 0; r < 5; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    for (long i = 0; i < n; ++i)
      for (int j = 0; j < 12; ++j) a[j] = _mm256_fmadd_ps(a[j], b, c);
    const std::chrono::duration<double> t = std::chrono::steady_clock::now() - t0;
    best = std::min(best, t.count());
  }
  float s = 0;
  for (int i = 0; i < 12; ++i) s += a[i][0];
  std::printf("%.1f GFLOP/s peak FMA one core (%.2f FMA/ns) %f\n", n * 12 * 16.0 / best * 1e-9,
              n * 12 / best * 1e-9, s);
}
