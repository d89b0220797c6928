// CPU kernels of the model-level fused ops (see common/fused_args.h): LayerNorm over the channels
// of each pixel, and the depthwise 3x3 convolution with its epilogue. Each processes a range of
// rows; channels are walked in SIMD vectors, the map's channel tail through partial loads/stores
// (parameter arrays and gradient buffers are padded to whole vectors by the op wrappers).
//
// Included only by cpu/fused_kernels_impl.h inside the per-ISA namespace.
#pragma once

#include <algorithm>

#include "../common/fused_args.h"

namespace asid {
namespace cpu {
namespace ASID_CPU_ISA {

// ---- LayerNorm ----------------------------------------------------------------------------

// y[c] = (x[c] - mean) rstd w[c] + b[c] for c < C (w, b padded to whole vectors), two-pass
// mean and biased variance; stores mean and rstd.
template <typename T>
inline void normalize_row(const T* x, int64_t C, const T* w, const T* b, T eps, T* y, T* mean,
                          T* rstd) {
  vec_t<T> s{};
  for_channel_vectors_masked<T>(C, [&](int64_t c, auto full, vec_t<T> mask) {
    s += load_c<decltype(full)::value>(x + c, C) * mask;
  });
  const T m = hsum<T>(s) / T(C);
  vec_t<T> q{};
  for_channel_vectors_masked<T>(C, [&](int64_t c, auto full, vec_t<T> mask) {
    const vec_t<T> d = (load_c<decltype(full)::value>(x + c, C) - m) * mask;
    q += d * d;
  });
  const T r = T(1) / std::sqrt(hsum<T>(q) / T(C) + eps);
  for_channel_vectors<T>(C, [&](int64_t c, auto full) {
    constexpr bool F = decltype(full)::value;
    store_c<F>(y + c, (load_c<F>(x + c, C) - m) * r * vload(w + c) + vload(b + c), C);
  });
  *mean = m;
  *rstd = r;
}

// Pixel rows [begin, end).
template <typename T>
void layer_norm_forward(const LayerNormFwdArgs<T>& a, int64_t begin, int64_t end) {
  const int64_t C = a.grid.channels;
  for (int64_t r = begin; r < end; ++r)
    normalize_row(a.grid.row(a.x, r), C, a.weight, a.bias, T(a.eps), a.y + r * C, a.mean + r,
                  a.rstd + r);
}

// dx = rstd (g w - mean(g w) - xhat mean(g w xhat)); dweight += g xhat, dbias += g.
template <typename T>
void layer_norm_backward(const LayerNormBwdArgs<T>& a, int64_t begin, int64_t end) {
  const int64_t C = a.grid.channels;
  for (int64_t r = begin; r < end; ++r) {
    const T* x = a.grid.row(a.x, r);
    const T* g = a.grad_y + r * C;
    const T mean = a.mean[r], rstd = a.rstd[r];
    vec_t<T> s1{}, s2{};
    for_channel_vectors_masked<T>(C, [&](int64_t c, auto full, vec_t<T> mask) {
      constexpr bool F = decltype(full)::value;
      const vec_t<T> gv = load_c<F>(g + c, C) * mask, xh = (load_c<F>(x + c, C) - mean) * rstd;
      const vec_t<T> gw = gv * vload(a.weight + c);
      s1 += gw;
      s2 += gw * xh;
      vstore(a.dweight + c, vload(a.dweight + c) + gv * xh);
      vstore(a.dbias + c, vload(a.dbias + c) + gv);
    });
    const T m1 = hsum<T>(s1) / T(C), m2 = hsum<T>(s2) / T(C);
    T* dx = a.dx + r * C;
    for_channel_vectors<T>(C, [&](int64_t c, auto full) {
      constexpr bool F = decltype(full)::value;
      const vec_t<T> xh = (load_c<F>(x + c, C) - mean) * rstd;
      const vec_t<T> gw = load_c<F>(g + c, C) * vload(a.weight + c);
      store_c<F>(dx + c, rstd * (gw - m1 - xh * m2), C);
    });
  }
}

// ---- depthwise 3x3 convolution ------------------------------------------------------------

// Rows h-1, h, h+1 of image row bh = b * H + h of a map, `zero_row` for rows outside the image.
template <typename T, typename M>
inline void image_rows(const RowGrid& g, const MapView<M>& m, int64_t bh, const T* zero_row,
                       const T* rows[3]) {
  const int64_t b = bh / g.height, h = bh % g.height;
  for (int dy = 0; dy < 3; ++dy) {
    const int64_t y = h + dy - 1;
    rows[dy] = (y >= 0 && y < g.height) ? m.data + b * m.sb + y * m.sh : zero_row;
  }
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

// Image rows [begin, end) of B*H: out = epilogue(conv(x)). The convolution of a row is written
// first (into out for "none"/"gelu", into scratch for "gate"), then the epilogue sweeps the row.
template <typename T>
void dwconv_forward(const DwconvFwdArgs<T>& a, int64_t begin, int64_t end) {
  const RowGrid& g = a.grid;
  const int64_t C = g.channels, W = g.width;
  DwconvScratch<T> s(g, a.x.sw);
  const T* rows[3];
  for (int64_t bh = begin; bh < end; ++bh) {
    image_rows(g, a.x, bh, s.zeros.data(), rows);
    if (a.epilogue == Epilogue::kGate) {
      dw_row(rows, a.x.sw, W, C, a.taps, a.ld, a.bias, s.row.data(), C);
      gate_row(s.row.data(), W, C, C, a.out + bh * W * (C / 2), C / 2);
      continue;
    }
    T* out = a.out + bh * W * C;
    dw_row(rows, a.x.sw, W, C, a.taps, a.ld, a.bias, out, C);
    if (a.epilogue == Epilogue::kGelu)
      map_flat(W * C, out, [&](int64_t i, int64_t k) { return gelu(load_n(out + i, k)); });
  }
}

// grad_pre of image row bh (the gradient at the convolution's output) into dst (W x C): from
// grad_out and the recomputed convolution (GELU: g GELU'(pre); gate: d a = g b GELU'(a),
// d b = g GELU(a)). `pre` is a W x C scratch row.
template <typename T>
inline void grad_pre_row(const DwconvBwdArgs<T>& a, int64_t bh, const T* zeros, T* pre, T* dst) {
  const DwconvFwdArgs<T>& f = a.fwd;
  const RowGrid& g = f.grid;
  const int64_t C = g.channels, ch = C / 2, W = g.width;
  const T* rows[3];
  image_rows(g, f.x, bh, zeros, rows);
  dw_row(rows, f.x.sw, W, C, f.taps, f.ld, f.bias, pre, C);
  if (f.epilogue == Epilogue::kGelu) {
    const T* go = a.grad_out + bh * W * C;
    return map_flat(W * C, dst, [&](int64_t i, int64_t k) {
      vec_t<T> d;
      gelu_and_grad(load_n(pre + i, k), &d);
      return load_n(go + i, k) * d;
    });
  }
  const T* go = a.grad_out + bh * W * ch;
  for (int64_t w = 0; w < W; ++w)
    for_channel_vectors<T>(ch, [&](int64_t c, auto full) {
      constexpr bool F = decltype(full)::value;
      const T* p = pre + w * C + c;
      vec_t<T> d;
      const vec_t<T> act = gelu_and_grad(load_c<F>(p, ch), &d);
      const vec_t<T> gv = load_c<F>(go + w * ch + c, ch);
      store_c<F>(dst + w * C + c, gv * load_c<F>(p + ch, ch) * d, ch);
      store_c<F>(dst + w * C + ch + c, gv * act, ch);
    });
}

// Image rows [begin, end) of B*H (one worker's contiguous share): dx = conv(grad_pre, flipped
// taps); dtaps[t] += grad_pre x[pixel + offset(t)], dbias += grad_pre. For the GELU / gate
// epilogues grad_pre is computed row by row into a ring of the three rows the flipped kernel
// reads (never stored as a map); for "none" it is grad_out.
template <typename T>
void dwconv_backward(const DwconvBwdArgs<T>& a, int64_t begin, int64_t end) {
  const DwconvFwdArgs<T>& f = a.fwd;
  const RowGrid& g = f.grid;
  const int64_t C = g.channels, W = g.width, H = g.height;
  const bool none = f.epilogue == Epilogue::kNone;
  DwconvScratch<T> s(g, f.x.sw);
  ScratchVector<T> ring(none ? 0 : 3 * W * C);
  int64_t tag[3] = {-1, -1, -1};
  const auto grad_pre = [&](int64_t bh) -> const T* {
    if (none) return a.grad_out + bh * W * C;
    T* dst = ring.data() + (bh % 3) * W * C;
    if (tag[bh % 3] != bh) {
      tag[bh % 3] = bh;
      grad_pre_row(a, bh, s.zeros.data(), s.row.data(), dst);
    }
    return dst;
  };
  const T *xrows[3], *grows[3];
  for (int64_t bh = begin; bh < end; ++bh) {
    const int64_t h = bh % H;
    for (int dy = 0; dy < 3; ++dy)
      grows[dy] = (h + dy - 1 >= 0 && h + dy - 1 < H) ? grad_pre(bh + dy - 1) : s.zeros.data();
    dw_row(grows, C, W, C, a.flipped_taps, f.ld, static_cast<const T*>(nullptr),
           a.dx + bh * W * C, C);
    image_rows(g, f.x, bh, s.zeros.data(), xrows);
    dw_row_weight_grad(xrows, f.x.sw, W, C, grows[1], C, a.dtaps, f.ld, a.dbias);
  }
}

}  // namespace ASID_CPU_ISA
}  // namespace cpu
}  // namespace asid
