// Row operations shared by the per-pixel CPU kernels (layer norm, depthwise convolution, the
// convolution chain): LayerNorm of a run of pixels, one image row of the depthwise 3x3 convolution
// and of its weight gradient, the gate epilogue, element-wise maps. Channels are walked in SIMD
// vectors, a map's channel tail through partial loads/stores; parameter arrays and gradient rows
// are padded to whole vectors.
//
// Included only by the kernel headers (per-ISA namespace, see tile_math.h).
#pragma once

#include <algorithm>
#include <cmath>

#include "common/layout.h"
#include "cpu/channel_math.h"
#include "cpu/tile_math.h"
#include "ops/depthwise_conv3x3.h"

namespace asid {
namespace cpu {
namespace ASID_CPU_ISA {

// A pixel's LayerNorm in three steps: its mean, its rstd given the mean (biased variance, two
// passes), and y[c] = (x[c] - mean) rstd w[c] + b[c] for c < C (w, b padded to whole vectors).
template <typename T>
ASID_VEC_INLINE T pixel_mean(const T* x, int64_t C) {
  vec_t<T> s{};
  for_channel_vectors_masked<T>(C, [&](int64_t c, auto full, vec_t<T> mask) {
    s += load_c<decltype(full)::value>(x + c, C) * mask;
  });
  return hsum<T>(s) / T(C);
}
template <typename T>
ASID_VEC_INLINE T pixel_rstd(const T* x, int64_t C, T mean, T eps) {
  vec_t<T> q{};
  for_channel_vectors_masked<T>(C, [&](int64_t c, auto full, vec_t<T> mask) {
    const vec_t<T> d = (load_c<decltype(full)::value>(x + c, C) - mean) * mask;
    q += d * d;
  });
  return T(1) / std::sqrt(hsum<T>(q) / T(C) + eps);
}
template <typename T>
ASID_VEC_INLINE void normalize_pixel(const T* x, int64_t C, T mean, T rstd, const T* w,
                                     const T* b, T* y) {
  for_channel_vectors<T>(C, [&](int64_t c, auto full) {
    constexpr bool F = decltype(full)::value;
    store_c<F>(y + c, (load_c<F>(x + c, C) - mean) * rstd * vload(w + c) + vload(b + c), C);
  });
}

// Pixels per step of normalize_rows and normalize_rows_backward.
constexpr int64_t kNormPixels = 8;

// LayerNorm of n pixels: pixel i's x(i) into y(i), its mean and rstd into mean[i] and rstd[i]
// (not kept where mean is null). Pixels go kNormPixels at a time, step by step, so that each
// pixel's chain of horizontal sums, division and square root overlaps the other pixels' instead
// of stalling the core pixel after pixel.
template <typename T, typename X, typename Y>
inline void normalize_rows(int64_t n, int64_t C, const X& x, const T* w, const T* b, T eps,
                           const Y& y, typename NonDeduced<T>::type* mean = nullptr,
                           typename NonDeduced<T>::type* rstd = nullptr) {
  for (int64_t i0 = 0; i0 < n; i0 += kNormPixels) {
    const int64_t np = std::min(kNormPixels, n - i0);
    T m[kNormPixels], r[kNormPixels];
    for (int64_t i = 0; i < np; ++i) m[i] = pixel_mean(x(i0 + i), C);
    for (int64_t i = 0; i < np; ++i) r[i] = pixel_rstd(x(i0 + i), C, m[i], eps);
    for (int64_t i = 0; i < np; ++i) normalize_pixel(x(i0 + i), C, m[i], r[i], w, b, y(i0 + i));
    if (mean)
      for (int64_t i = 0; i < np; ++i) {
        mean[i0 + i] = m[i];
        rstd[i0 + i] = r[i];
      }
  }
}

// The backward of normalize_rows for pixel i's gradient g(i), given its mean[i] and rstd[i]:
// dx(i)[c] = rstd (g w - mean(g w) - xhat mean(g w xhat)) with xhat = (x - mean) rstd (the
// weights' gradients: norm_param_grads). Pixels go kNormPixels at a time: the two means, then dx.
template <typename T, typename X, typename G, typename D>
inline void normalize_rows_backward(int64_t n, int64_t C, const X& x, const G& g, const T* w,
                                    const T* mean, const T* rstd, const D& dx) {
  for (int64_t i0 = 0; i0 < n; i0 += kNormPixels) {
    const int64_t i1 = std::min(n, i0 + kNormPixels);
    T m1[kNormPixels], m2[kNormPixels];  // mean(g w), mean(g w xhat)
    for (int64_t i = i0; i < i1; ++i) {
      const T *xi = x(i), *gi = g(i);
      const T mi = mean[i], ri = rstd[i];
      vec_t<T> s1{}, s2{};
      for_channel_vectors_masked<T>(C, [&](int64_t c, auto full, vec_t<T> mask) {
        constexpr bool F = decltype(full)::value;
        const vec_t<T> gw = load_c<F>(gi + c, C) * mask * vload(w + c);
        s1 += gw;
        s2 += gw * ((load_c<F>(xi + c, C) - mi) * ri);
      });
      m1[i - i0] = hsum<T>(s1) / T(C);
      m2[i - i0] = hsum<T>(s2) / T(C);
    }
    for (int64_t i = i0; i < i1; ++i) {
      const T *xi = x(i), *gi = g(i);
      const T mi = mean[i], ri = rstd[i], g1 = m1[i - i0], g2 = m2[i - i0];
      T* di = dx(i);
      for_channel_vectors<T>(C, [&](int64_t c, auto full) {
        constexpr bool F = decltype(full)::value;
        const vec_t<T> xh = (load_c<F>(xi + c, C) - mi) * ri;
        const vec_t<T> gw = load_c<F>(gi + c, C) * vload(w + c);
        store_c<F>(di + c, ri * (gw - g1 - xh * g2), C);
      });
    }
  }
}

// LayerNorm's weight gradients over n pixels p: dweight[c] += sum_p g_p[c] xhat_p[c] and
// dbias[c] += sum_p g_p[c], with pixel p's x(p), g(p) (channel rows), mean(p) and rstd(p).
template <typename T, typename X, typename G, typename M, typename R>
inline void norm_param_grads(int64_t n, int64_t C, const X& x, const G& g, const M& mean,
                             const R& rstd, T* dweight, T* dbias) {
  add_pixel_sums<T>(n, C, dweight, [&](int64_t p, int64_t c, auto full) {
    constexpr bool F = decltype(full)::value;
    return load_c<F>(g(p) + c, C) * ((load_c<F>(x(p) + c, C) - mean(p)) * rstd(p));
  });
  add_pixel_sums<T>(n, C, dbias, [&](int64_t p, int64_t c, auto full) {
    return load_c<decltype(full)::value>(g(p) + c, C);
  });
}

// rows[dy] = row(bh + dy - 1) for the image rows h - 1, h, h + 1 around image row bh = b * H + h
// (in this order), `zero_row` for those outside the image.
template <typename T, typename F>
inline void rows_around(int64_t bh, int64_t H, const T* zero_row, const F& row,
                        const T* rows[3]) {
  const int64_t h = bh % H;
  for (int dy = 0; dy < 3; ++dy)
    rows[dy] = (h + dy - 1 >= 0 && h + dy - 1 < H) ? row(bh + dy - 1) : zero_row;
}

// Rows h-1, h, h+1 of image row bh = b * H + h of a map, `zero_row` for rows outside the image.
template <typename T, typename M>
inline void image_rows(const RowGrid& g, const MapView<M>& m, int64_t bh, const T* zero_row,
                       const T* rows[3]) {
  rows_around(bh, g.height, zero_row, [&](int64_t r) -> const T* {
    return m.data + (r / g.height) * m.sb + (r % g.height) * m.sh;
  }, rows);
}

// The conv at one pixel for one channel vector (taps t[9] of that vector), with one partial sum
// per kernel row to keep the FMA chains short; LEFT / RIGHT: whether the columns w - 1, w + 1
// exist. FULL: n == lanes (whole-vector loads).
template <bool FULL, bool LEFT, bool RIGHT, typename T>
inline vec_t<T> dw_pixel(const T* const rows[3], int64_t off, int64_t sw, const vec_t<T>* t,
                         int64_t n, vec_t<T> bias) {
  const auto ld = [n](const T* p) { return load_c<FULL>(p, n); };
  vec_t<T> part[3];
  for (int dy = 0; dy < 3; ++dy) {
    const T* r = rows[dy] + off;
    part[dy] = ld(r) * t[3 * dy + 1];
    if (LEFT) part[dy] += ld(r - sw) * t[3 * dy];
    if (RIGHT) part[dy] += ld(r + sw) * t[3 * dy + 2];
  }
  return bias + part[0] + (part[1] + part[2]);
}

// Pixels per tile of the depthwise sweeps: the tile's three input rows stay in L1 while every
// channel vector of it is processed.
constexpr int64_t kPixelTile = 16;

// Calls px(w, left, right) for w in [w0, w1) of a row of W pixels, left / right being
// std::bool_constant: whether the columns w - 1 / w + 1 exist.
template <typename F>
inline void sweep_pixels(int64_t W, int64_t w0, int64_t w1, const F& px) {
  int64_t w = w0;
  if (w == 0) {
    if (W == 1) return px(int64_t(0), std::false_type{}, std::false_type{});
    px(int64_t(0), std::false_type{}, std::true_type{});
    ++w;
  }
  for (const int64_t inner_end = std::min(w1, W - 1); w < inner_end; ++w)
    px(w, std::true_type{}, std::true_type{});
  if (w < w1) px(W - 1, std::true_type{}, std::false_type{});
}

// One image row of the depthwise conv, tile by tile and, in a tile, channel vector by channel
// vector (its 9 taps held in registers): dst[w ldd + c] = bias[c] + sum over dy, dx of
// rows[dy][(w + dx - 1) sw + c] taps[3 dy + dx][c] for w < W, c < C; columns outside the row
// add nothing. taps (9, ldt) and bias are padded; bias may be null.
template <typename T>
inline void dw_row(const T* const rows[3], int64_t sw, int64_t W, int64_t C, const T* taps,
                   int64_t ldt, const T* bias, T* dst, int64_t ldd) {
  for (int64_t w0 = 0; w0 < W; w0 += kPixelTile) {
    const int64_t w1 = std::min(W, w0 + kPixelTile);
    for_channel_vectors<T>(C, [&](int64_t c, auto full) {
      constexpr bool F = decltype(full)::value;
      vec_t<T> t[9];
      for (int k = 0; k < 9; ++k) t[k] = vload(taps + k * ldt + c);
      const vec_t<T> b = bias ? vload(bias + c) : vec_t<T>{};
      sweep_pixels(W, w0, w1, [&](int64_t w, auto left, auto right) {
        store_c<F>(dst + w * ldd + c,
                   dw_pixel<F, decltype(left)::value, decltype(right)::value>(
                       rows, w * sw + c, sw, t, C, b),
                   C);
      });
    });
  }
}

// One pixel's contribution to the weight gradient of one channel vector: a[3 dy + dx] +=
// g rows[dy][(w + dx - 1) sw] (LEFT / RIGHT: whether the columns w - 1, w + 1 exist).
template <bool FULL, bool LEFT, bool RIGHT, typename T>
inline void dw_pixel_weight_grad(const T* const rows[3], int64_t off, int64_t sw, vec_t<T> g,
                                 int64_t n, vec_t<T>* a) {
  const auto ld = [n](const T* p) { return load_c<FULL>(p, n); };
  for (int dy = 0; dy < 3; ++dy) {
    const T* r = rows[dy] + off;
    if (LEFT) a[3 * dy] += g * ld(r - sw);
    a[3 * dy + 1] += g * ld(r);
    if (RIGHT) a[3 * dy + 2] += g * ld(r + sw);
  }
}

// The weight gradient of one image row: dtaps[3 dy + dx][c] += sum_w g[w ldg + c]
// rows[dy][(w + dx - 1) sw + c] and dbias[c] += sum_w g[w ldg + c] (dtaps, dbias padded); tiled
// like dw_row.
template <typename T>
inline void dw_row_weight_grad(const T* const rows[3], int64_t sw, int64_t W, int64_t C,
                               const T* g, int64_t ldg, T* dtaps, int64_t ldt, T* dbias) {
  for (int64_t w0 = 0; w0 < W; w0 += kPixelTile) {
    const int64_t w1 = std::min(W, w0 + kPixelTile);
    for_channel_vectors_masked<T>(C, [&](int64_t c, auto full, vec_t<T> mask) {
      constexpr bool F = decltype(full)::value;
      vec_t<T> a[9] = {}, ab{};
      sweep_pixels(W, w0, w1, [&](int64_t w, auto left, auto right) {
        const vec_t<T> gv = load_c<F>(g + w * ldg + c, C) * mask;
        ab += gv;
        dw_pixel_weight_grad<F, decltype(left)::value, decltype(right)::value>(
            rows, w * sw + c, sw, gv, C, a);
      });
      for (int k = 0; k < 9; ++k) vstore(dtaps + k * ldt + c, vload(dtaps + k * ldt + c) + a[k]);
      vstore(dbias + c, vload(dbias + c) + ab);
    });
  }
}

// p[i, i + k) = f(i, k) over n contiguous elements in vectors of k = lanes (a partial tail).
template <typename T, typename F>
inline void map_flat(int64_t n, T* p, const F& f) {
  constexpr int L = lanes<T>();
  int64_t i = 0;
  for (; i + 4 * L <= n; i += 4 * L) {  // four independent vectors per step for ILP
    const vec_t<T> r0 = f(i, L), r1 = f(i + L, L), r2 = f(i + 2 * L, L), r3 = f(i + 3 * L, L);
    vstore(p + i, r0);
    vstore(p + i + L, r1);
    vstore(p + i + 2 * L, r2);
    vstore(p + i + 3 * L, r3);
  }
  for (; i < n; i += L) {
    const int64_t k = std::min<int64_t>(L, n - i);
    store_n(p + i, f(i, k), k);
  }
}

// Scratch of one worker: one image row of the convolution and a zero image row.
template <typename T>
struct DwconvScratch {
  ScratchVector<T> row, zeros;
  DwconvScratch(const RowGrid& g, int64_t sw)
      : row(g.width * g.channels), zeros(g.width * std::max(sw, g.channels) + lanes<T>()) {}
};

// GELU(first half) * second half of each pixel of a convolved row (W x C) into out (W x C/2).
template <typename T>
inline void gate_row(const T* pre, int64_t W, int64_t C, int64_t ldp, T* out, int64_t ldo) {
  const int64_t ch = C / 2;
  for (int64_t w = 0; w < W; ++w)
    for_channel_vectors<T>(ch, [&](int64_t c, auto full) {
      const T* p = pre + w * ldp + c;
      store_c<decltype(full)::value>(out + w * ldo + c,
                                     gelu(load_c<decltype(full)::value>(p, ch)) *
                                         load_c<decltype(full)::value>(p + ch, ch), ch);
    });
}

// The gradient at a depthwise conv's output pre (W x C, row stride ldp) from the gradient g of its
// epilogue's output (row stride ldg; C / 2 channels for the gate) into dst (row stride ldd, not
// pre's or g's memory): "none": g; GELU: g GELU'(pre); gate GELU(a) * b: d a = g b GELU'(a),
// d b = g GELU(a).
template <typename T>
inline void epilogue_grad_row(Epilogue e, const T* pre, int64_t ldp, const T* g, int64_t ldg,
                              int64_t W, int64_t C, T* dst, int64_t ldd) {
  const int64_t n = e == Epilogue::kGate ? C / 2 : C;
  for (int64_t w = 0; w < W; ++w)
    for_channel_vectors<T>(n, [&](int64_t k, auto full) {
      constexpr bool F = decltype(full)::value;
      const T* v = pre + w * ldp + k;
      const vec_t<T> gv = load_c<F>(g + w * ldg + k, n);
      T* d = dst + w * ldd + k;
      if (e == Epilogue::kNone) return store_c<F>(d, gv, n);
      vec_t<T> slope;
      const vec_t<T> act = gelu_and_grad(load_c<F>(v, n), &slope);
      if (e == Epilogue::kGelu) return store_c<F>(d, gv * slope, n);
      store_c<F>(d, gv * load_c<F>(v + n, n) * slope, n);
      store_c<F>(d + n, gv * act, n);
    });
}

}  // namespace ASID_CPU_ISA
}  // namespace cpu
}  // namespace asid
