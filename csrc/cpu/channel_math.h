// Vector helpers of the per-pixel CPU kernels: channel-vector sweeps with masks for channel
// tails, and the normal CDF/density behind the exact (erf) GELU and its derivative.
//
// Included only by the kernel headers (per-ISA namespace, see tile_math.h).
#pragma once

#include <cmath>
#include <cstdint>
#include <type_traits>

#include "cpu/tile_math.h"

namespace asid {
namespace cpu {
namespace ASID_CPU_ISA {

// A channel vector of a for_channel_vectors sweep over C channels: whole when FULL, else the
// C (< lanes) channels of the single partial vector.
template <bool FULL, typename T>
inline vec_t<T> load_c(const T* p, int64_t C) {
  return FULL ? vload(p) : load_n(p, C);
}
template <bool FULL, typename T>
inline void store_c(T* p, vec_t<T> v, int64_t C) {
  if (FULL) vstore(p, v);
  else store_n(p, v, C);
}

// Calls f(c, full) for channel vectors covering [0, C): whole vectors (full = std::true_type),
// the last one shifted back to end at C when C is not a multiple of lanes, so its first lanes
// are computed twice (use it for element-wise results written apart from their inputs only:
// never for sums or in-place updates); for C < lanes one partial vector f(0, std::false_type).
template <typename T, typename F>
inline void for_channel_vectors(int64_t C, const F& f) {
  constexpr int L = lanes<T>();
  if (C < L) return f(int64_t(0), std::false_type{});
  for (int64_t c = 0; c + L <= C; c += L) f(c, std::true_type{});
  if (C % L) f(C - L, std::true_type{});
}

// Lane masks read from two tables of 2 * lanes: ones then zeros, zeros then ones.
template <typename T>
struct MaskTables {
  T ones_zeros[2 * lanes<T>()], zeros_ones[2 * lanes<T>()];
  MaskTables() {
    for (int i = 0; i < 2 * lanes<T>(); ++i) {
      ones_zeros[i] = i < lanes<T>() ? T(1) : T(0);
      zeros_ones[i] = T(1) - ones_zeros[i];
    }
  }
};

template <typename T>
inline const MaskTables<T>& mask_tables() {
  static const MaskTables<T> tables;
  return tables;
}

// 1.0 in the first n lanes (0 <= n <= lanes), 0.0 after.
template <typename T>
inline vec_t<T> prefix_mask(int64_t n) {
  return vload(mask_tables<T>().ones_zeros + (lanes<T>() - n));
}

// 1.0 in the last n lanes (0 <= n <= lanes), 0.0 before.
template <typename T>
inline vec_t<T> suffix_mask(int64_t n) {
  return vload(mask_tables<T>().zeros_ones + n);
}

// Like for_channel_vectors, for sums: f(c, full, mask) with mask 1.0 on the lanes of channels not
// visited before (the shifted last vector masks its first lanes, a partial vector its tail).
template <typename T, typename F>
inline void for_channel_vectors_masked(int64_t C, const F& f) {
  constexpr int L = lanes<T>();
  if (C < L) return f(int64_t(0), std::false_type{}, prefix_mask<T>(C));
  const vec_t<T> ones = vsplat<T>(1);
  for (int64_t c = 0; c + L <= C; c += L) f(c, std::true_type{}, ones);
  if (C % L) f(C - L, std::true_type{}, suffix_mask<T>(C % L));
}

// sums[c] += sum over pixels p < n of term(p, c, full), a vector of channels c.. as
// for_channel_vectors_masked walks them (padded sums). The sums stay in registers over all n
// pixels (adding into memory pixel by pixel chains every pixel's add to the previous pixel's
// store), and up to kMaxVectors vectors the pixels are read in order, each once.
template <typename T, typename F>
inline void add_pixel_sums(int64_t n, int64_t C, T* sums, const F& term) {
  constexpr int L = lanes<T>(), kMaxVectors = 8;
  const int64_t vectors = (C + L - 1) / L;
  if (C < L || vectors > kMaxVectors) {
    for_channel_vectors_masked<T>(C, [&](int64_t c, auto full, vec_t<T> mask) {
      vec_t<T> s0{}, s1{};
      int64_t p = 0;
      for (; p + 2 <= n; p += 2) {  // two chains of adds
        s0 += term(p, c, full);
        s1 += term(p + 1, c, full);
      }
      if (p < n) s0 += term(p, c, full);
      vstore(sums + c, vload(sums + c) + (s0 + s1) * mask);
    });
    return;
  }
  vec_t<T> s[kMaxVectors] = {};
  for (int64_t p = 0; p < n; ++p)
    for (int64_t v = 0; v < vectors; ++v)
      s[v] += term(p, std::min<int64_t>(v * L, C - L), std::true_type{});
  for (int64_t v = 0; v < vectors; ++v) {
    const int64_t c = std::min<int64_t>(v * L, C - L);
    const vec_t<T> mask = v * L + L <= C ? vsplat<T>(1) : suffix_mask<T>(C % L);
    vstore(sums + c, vload(sums + c) + s[v] * mask);
  }
}

// erf(z) in float: z clamped to [-4, 4] (erf(4) = 1 - 1.5e-8), then z P(z^2) / Q(z^2), a
// degree 5 / 5 rational least-squares fit made for this project: |error| < 4e-7 evaluated in
// float32 (the A&S 7.1.26 form of ATen's vectorised erf: < 1.5e-7 plus rounding), at about half
// its cost (no exponential).
inline f32v erf_rational(f32v z) {
  z = z < -4.0f ? vsplat(-4.0f) : z;
  z = z > 4.0f ? vsplat(4.0f) : z;
  const f32v u = z * z;
  static constexpr float kP[] = {1.974462280e-06f, 2.879961087e-04f, 4.002961413e-03f,
                                  5.346483184e-02f, 1.962366694e-01f, 1.128378979e+00f};
  static constexpr float kQ[] = {3.747481425e-05f, 1.216147197e-03f, 1.544292209e-02f,
                                  1.164704354e-01f, 5.072413872e-01f, 1.0f};
  return z * horner(u, kP) / horner(u, kQ);
}

// Phi(x), the standard normal CDF (GELU(x) = x Phi(x)).
inline f32v normal_cdf(f32v x) { return 0.5f + 0.5f * erf_rational(x * 0.70710678118654752f); }

// phi(x) = exp(-x^2 / 2) / sqrt(2 pi), taken as 0 for |x| > 9 (below 1e-18; avoids the slow
// denormal intermediates of the exponential near its underflow).
inline f32v normal_pdf(f32v x) {
  using Bits = Simd<float>::Bits;
  const Bits far = (x < 0.0f ? -x : x) > 9.0f;
  return (f32v)((Bits)(exp_nonpositive(-0.5f * x * x) * 0.39894228040143268f) & ~far);
}

// double: libm per lane.
inline vec_t<double> normal_cdf(vec_t<double> x) {
  vec_t<double> cdf;
  for (int i = 0; i < lanes<double>(); ++i) cdf[i] = 0.5 * std::erfc(-x[i] * 0.70710678118654752);
  return cdf;
}

inline vec_t<double> normal_pdf(vec_t<double> x) {
  vec_t<double> pdf;
  for (int i = 0; i < lanes<double>(); ++i)
    pdf[i] = std::exp(-0.5 * x[i] * x[i]) * 0.39894228040143268;
  return pdf;
}

// sigmoid(x) = 1 / (1 + exp(-x)), from e = exp(-|x|) <= 1 (no overflow): 1 / (1 + e) for x >= 0,
// e / (1 + e) below.
inline f32v sigmoid(f32v x) {
  const f32v e = exp_nonpositive(x < 0.0f ? x : -x), r = 1.0f / (1.0f + e);
  return x < 0.0f ? e * r : r;
}

// double: libm per lane.
inline vec_t<double> sigmoid(vec_t<double> x) {
  vec_t<double> s;
  for (int i = 0; i < lanes<double>(); ++i) s[i] = 1.0 / (1.0 + std::exp(-x[i]));
  return s;
}

template <typename V>
inline V gelu(V x) {
  return x * normal_cdf(x);
}

// GELU(x) and its derivative Phi(x) + x phi(x).
template <typename V>
inline V gelu_and_grad(V x, V* grad) {
  const V cdf = normal_cdf(x);
  *grad = cdf + x * normal_pdf(x);
  return x * cdf;
}

}  // namespace ASID_CPU_ISA
}  // namespace cpu
}  // namespace asid
