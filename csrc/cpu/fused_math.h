// Vector helpers of the fused CPU kernels: partial loads/stores for channel tails, horizontal
// sums, and the normal CDF/density behind the exact (erf) GELU and its derivative.
//
// Included only by cpu/fused_kernels_impl.h inside the per-ISA namespace (after tile_math.h, whose
// vec_t / vload / vstore / vsplat / exp_nonpositive it uses).
#pragma once

#include <cmath>
#include <cstdint>

namespace asid {
namespace cpu {
namespace ASID_CPU_ISA {

template <typename T>
constexpr int lanes() {
  return Simd<T>::lanes;
}

// memcpy of the first n (< 8) elements with a compile-time size per case (no library call).
template <typename T>
inline void copy_prefix(void* dst, const void* src, int64_t n) {
  switch (n) {
#define ASID_COPY_CASE(k) \
  case k:                 \
    __builtin_memcpy(dst, src, k * sizeof(T)); \
    return;
    ASID_COPY_CASE(1) ASID_COPY_CASE(2) ASID_COPY_CASE(3) ASID_COPY_CASE(4)
    ASID_COPY_CASE(5) ASID_COPY_CASE(6) ASID_COPY_CASE(7)
#undef ASID_COPY_CASE
    default:
      return;
  }
}

// The first n (<= lanes) elements of p, zeros after them.
template <typename T>
inline vec_t<T> load_n(const T* p, int64_t n) {
  if (n == lanes<T>()) return vload(p);
  vec_t<T> v{};
  copy_prefix<T>(&v, p, n);
  return v;
}

// Stores the first n (<= lanes) elements of v.
template <typename T>
inline void store_n(T* p, vec_t<T> v, int64_t n) {
  if (n == lanes<T>()) return vstore(p, v);
  copy_prefix<T>(p, &v, n);
}

template <typename T>
inline T hsum(vec_t<T> v) {
  T s = 0;
  for (int i = 0; i < lanes<T>(); ++i) s += v[i];
  return s;
}

// 1.0 in the first n lanes, 0.0 after.
template <typename T>
inline vec_t<T> prefix_mask(int64_t n) {
  vec_t<T> m{};
  for (int64_t i = 0; i < n; ++i) m[i] = T(1);
  return m;
}

// Phi(x) (standard normal CDF) and, through *density, phi(x) = exp(-x^2/2) / sqrt(2 pi).
// float: erf by Abramowitz-Stegun 7.1.26 (|error| < 1.5e-7, the form ATen's vectorised erf
// uses), sharing the exp(-x^2/2) of the density; for |x| > 9 the exponential is taken as 0
// (Phi = 0 or 1, phi = 0 exactly: below 1e-18, and no denormal intermediates, which are slow).
// double: libm per lane.
inline f32x8 normal_cdf(f32x8 x, f32x8* density) {
  const f32x8 z = (x < 0.0f ? -x : x) * 0.70710678118654752f;
  const i32x8 far = z > 6.3639610306789277f;  // |x| > 9
  const f32x8 e = (f32x8)((i32x8)exp_nonpositive(-z * z) & ~far);
  const f32x8 t = 1.0f / (1.0f + 0.3275911f * z);
  f32x8 p = vsplat(1.061405429f);
  p = p * t - 1.453152027f;
  p = p * t + 1.421413741f;
  p = p * t - 0.284496736f;
  p = p * t + 0.254829592f;
  const f32x8 erf_abs = 1.0f - p * t * e;
  if (density) *density = e * 0.39894228040143268f;
  return 0.5f + 0.5f * (x < 0.0f ? -erf_abs : erf_abs);
}

inline f64x4 normal_cdf(f64x4 x, f64x4* density) {
  f64x4 cdf;
  for (int i = 0; i < 4; ++i) {
    cdf[i] = 0.5 * std::erfc(-x[i] * 0.70710678118654752);
    if (density) (*density)[i] = std::exp(-0.5 * x[i] * x[i]) * 0.39894228040143268;
  }
  return cdf;
}

template <typename V>
inline V gelu(V x) {
  return x * normal_cdf(x, nullptr);
}

// GELU(x) and its derivative Phi(x) + x phi(x).
template <typename V>
inline V gelu_and_grad(V x, V* grad) {
  V density;
  const V cdf = normal_cdf(x, &density);
  *grad = cdf + x * density;
  return x * cdf;
}

}  // namespace ASID_CPU_ISA
}  // namespace cpu
}  // namespace asid
