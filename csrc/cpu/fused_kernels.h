// CPU kernels of the model-level fused ops (see common/fused_args.h): LayerNorm over the channels
// of each pixel, and the depthwise 3x3 convolution with its epilogue. Each processes a range of
// rows; channels are walked in SIMD vectors, the map's channel tail through partial loads/stores
// (parameter arrays and gradient buffers are padded to whole vectors by the op wrappers).
//
// Included only by cpu/fused_kernels_impl.h inside the per-ISA namespace.
#pragma once

#include <algorithm>
#include <vector>

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
  constexpr int L = lanes<T>();
  vec_t<T> s{};
  for (int64_t c = 0; c < C; c += L) s += load_n(x + c, std::min<int64_t>(L, C - c));
  const T m = hsum<T>(s) / T(C);
  vec_t<T> q{};
  for (int64_t c = 0; c < C; c += L) {
    const int64_t n = std::min<int64_t>(L, C - c);
    const vec_t<T> d = load_n(x + c, n) - m;
    q += n == L ? d * d : d * d * prefix_mask<T>(n);
  }
  const T r = T(1) / std::sqrt(hsum<T>(q) / T(C) + eps);
  for (int64_t c = 0; c < C; c += L) {
    const int64_t n = std::min<int64_t>(L, C - c);
    store_n(y + c, (load_n(x + c, n) - m) * r * vload(w + c) + vload(b + c), n);
  }
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
  constexpr int L = lanes<T>();
  const int64_t C = a.grid.channels;
  for (int64_t r = begin; r < end; ++r) {
    const T* x = a.grid.row(a.x, r);
    const T* g = a.grad_y + r * C;
    const T mean = a.mean[r], rstd = a.rstd[r];
    vec_t<T> s1{}, s2{};
    for (int64_t c = 0; c < C; c += L) {  // padded lanes have g = 0 and add nothing
      const int64_t n = std::min<int64_t>(L, C - c);
      const vec_t<T> gv = load_n(g + c, n), xh = (load_n(x + c, n) - mean) * rstd;
      const vec_t<T> gw = gv * vload(a.weight + c);
      s1 += gw;
      s2 += gw * xh;
      vstore(a.dweight + c, vload(a.dweight + c) + gv * xh);
      vstore(a.dbias + c, vload(a.dbias + c) + gv);
    }
    const T m1 = hsum<T>(s1) / T(C), m2 = hsum<T>(s2) / T(C);
    T* dx = a.dx + r * C;
    for (int64_t c = 0; c < C; c += L) {
      const int64_t n = std::min<int64_t>(L, C - c);
      const vec_t<T> xh = (load_n(x + c, n) - mean) * rstd;
      const vec_t<T> gw = load_n(g + c, n) * vload(a.weight + c);
      store_n(dx + c, rstd * (gw - m1 - xh * m2), n);
    }
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

// One channel vector at c of n (<= lanes) channels: a whole-vector load when n == lanes.
template <typename T>
inline vec_t<T> load_c(const T* p, int64_t n) {
  return n == lanes<T>() ? vload(p) : load_n(p, n);
}

// The conv at one pixel for one channel vector (taps t[9] of that vector), with one partial sum
// per kernel row to keep the FMA chains short; LEFT / RIGHT: whether the columns w - 1, w + 1
// exist. FULL: n == lanes (whole-vector loads).
template <bool FULL, bool LEFT, bool RIGHT, typename T>
inline vec_t<T> dw_pixel(const T* const rows[3], int64_t off, int64_t sw, const vec_t<T>* t,
                         int64_t n, vec_t<T> bias) {
  const auto ld = [n](const T* p) { return FULL ? vload(p) : load_n(p, n); };
  vec_t<T> part[3];
  for (int dy = 0; dy < 3; ++dy) {
    const T* r = rows[dy] + off;
    part[dy] = ld(r) * t[3 * dy + 1];
    if (LEFT) part[dy] += ld(r - sw) * t[3 * dy];
    if (RIGHT) part[dy] += ld(r + sw) * t[3 * dy + 2];
  }
  return bias + part[0] + (part[1] + part[2]);
}

template <bool FULL, typename T>
inline void dw_row_vector(const T* const rows[3], int64_t sw, int64_t W, int64_t c, int64_t n,
                          const vec_t<T>* t, vec_t<T> b, T* dst, int64_t ldd) {
  const auto put = [&](int64_t w, vec_t<T> v) {
    if (FULL) vstore(dst + w * ldd + c, v);
    else store_n(dst + w * ldd + c, v, n);
  };
  if (W == 1) return put(0, dw_pixel<FULL, false, false>(rows, c, sw, t, n, b));
  put(0, dw_pixel<FULL, false, true>(rows, c, sw, t, n, b));
  int64_t w = 1;
  for (; w + 2 < W; w += 2) {  // two independent pixels per step
    const vec_t<T> v0 = dw_pixel<FULL, true, true>(rows, w * sw + c, sw, t, n, b);
    const vec_t<T> v1 = dw_pixel<FULL, true, true>(rows, (w + 1) * sw + c, sw, t, n, b);
    put(w, v0);
    put(w + 1, v1);
  }
  for (; w + 1 < W; ++w) put(w, dw_pixel<FULL, true, true>(rows, w * sw + c, sw, t, n, b));
  put(W - 1, dw_pixel<FULL, true, false>(rows, (W - 1) * sw + c, sw, t, n, b));
}

// One image row of the depthwise conv, channel vector by channel vector (its 9 taps held while
// the row is swept): dst[w ldd + c] = bias[c] + sum over dy, dx of
// rows[dy][(w + dx - 1) sw + c] taps[3 dy + dx][c] for w < W, c < C; columns outside the row
// add nothing. taps (9, ldt) and bias are padded; bias may be null.
template <typename T>
inline void dw_row(const T* const rows[3], int64_t sw, int64_t W, int64_t C, const T* taps,
                   int64_t ldt, const T* bias, T* dst, int64_t ldd) {
  constexpr int L = lanes<T>();
  for (int64_t c = 0; c < C; c += L) {
    const int64_t n = std::min<int64_t>(L, C - c);
    vec_t<T> t[9];
    for (int k = 0; k < 9; ++k) t[k] = vload(taps + k * ldt + c);
    const vec_t<T> b = bias ? vload(bias + c) : vec_t<T>{};
    if (n == L) dw_row_vector<true>(rows, sw, W, c, n, t, b, dst, ldd);
    else dw_row_vector<false>(rows, sw, W, c, n, t, b, dst, ldd);
  }
}

// The weight gradient of one image row: dtaps[3 dy + dx][c] += sum_w g[w ldg + c]
// rows[dy][(w + dx - 1) sw + c] and dbias[c] += sum_w g[w ldg + c] (dtaps, dbias padded).
template <typename T>
inline void dw_row_weight_grad(const T* const rows[3], int64_t sw, int64_t W, int64_t C,
                               const T* g, int64_t ldg, T* dtaps, int64_t ldt, T* dbias) {
  constexpr int L = lanes<T>();
  for (int64_t c = 0; c < C; c += L) {
    const int64_t n = std::min<int64_t>(L, C - c);
    vec_t<T> a[9] = {}, ab{};
    for (int64_t w = 0; w < W; ++w) {
      const vec_t<T> gv = load_c(g + w * ldg + c, n);
      ab += gv;
      for (int dy = 0; dy < 3; ++dy) {
        const T* r = rows[dy] + w * sw + c;
        if (w > 0) a[3 * dy] += gv * load_c(r - sw, n);
        a[3 * dy + 1] += gv * load_c(r, n);
        if (w + 1 < W) a[3 * dy + 2] += gv * load_c(r + sw, n);
      }
    }
    for (int k = 0; k < 9; ++k) vstore(dtaps + k * ldt + c, vload(dtaps + k * ldt + c) + a[k]);
    vstore(dbias + c, vload(dbias + c) + ab);
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
  std::vector<T> row, zeros;
  DwconvScratch(const RowGrid& g, int64_t sw)
      : row(g.width * g.channels), zeros(g.width * std::max(sw, g.channels) + lanes<T>()) {}
};

// GELU(first half) * second half of each pixel of a convolved row (W x C) into out (W x C/2).
template <typename T>
inline void gate_row(const T* pre, int64_t W, int64_t C, int64_t ldp, T* out, int64_t ldo) {
  constexpr int L = lanes<T>();
  const int64_t ch = C / 2;
  for (int64_t w = 0; w < W; ++w)
    for (int64_t c = 0; c < ch; c += L) {
      const int64_t k = std::min<int64_t>(L, ch - c);
      const T* p = pre + w * ldp + c;
      store_n(out + w * ldo + c, gelu(load_c(p, k)) * load_n(p + ch, k), k);
    }
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

// Pass 1 of the backward for GELU / gate epilogues: grad_pre from grad_out and the recomputed
// convolution (GELU: g GELU'(pre); gate: d a = g b GELU'(a), d b = g GELU(a)).
template <typename T>
void dwconv_grad_pre(const DwconvBwdArgs<T>& a, int64_t begin, int64_t end) {
  constexpr int L = lanes<T>();
  const DwconvFwdArgs<T>& f = a.fwd;
  const RowGrid& g = f.grid;
  const int64_t C = g.channels, ch = C / 2, W = g.width;
  DwconvScratch<T> s(g, f.x.sw);
  const T* pre = s.row.data();
  const T* rows[3];
  for (int64_t bh = begin; bh < end; ++bh) {
    image_rows(g, f.x, bh, s.zeros.data(), rows);
    dw_row(rows, f.x.sw, W, C, f.taps, f.ld, f.bias, s.row.data(), C);
    T* gp = a.grad_pre + bh * W * C;
    if (f.epilogue == Epilogue::kGelu) {
      const T* go = a.grad_out + bh * W * C;
      map_flat(W * C, gp, [&](int64_t i, int64_t k) {
        vec_t<T> d;
        gelu_and_grad(load_n(pre + i, k), &d);
        return load_n(go + i, k) * d;
      });
      continue;
    }
    const T* go = a.grad_out + bh * W * ch;
    for (int64_t w = 0; w < W; ++w)
      for (int64_t c = 0; c < ch; c += L) {
        const int64_t k = std::min<int64_t>(L, ch - c);
        const T* p = pre + w * C + c;
        vec_t<T> d;
        const vec_t<T> act = gelu_and_grad(load_n(p, k), &d);
        const vec_t<T> gv = load_n(go + w * ch + c, k);
        store_n(gp + w * C + c, gv * load_n(p + ch, k) * d, k);
        store_n(gp + w * C + ch + c, gv * act, k);
      }
  }
}

// Pass 2: dx = conv(grad_pre, flipped taps); dtaps[t] += grad_pre x[pixel + offset(t)],
// dbias += grad_pre.
template <typename T>
void dwconv_backward(const DwconvBwdArgs<T>& a, int64_t begin, int64_t end) {
  const DwconvFwdArgs<T>& f = a.fwd;
  const RowGrid& g = f.grid;
  const int64_t C = g.channels, W = g.width;
  const MapView<const T> gp{a.grad_pre, g.height * W * C, W * C, C};
  DwconvScratch<T> s(g, f.x.sw);
  const T *xrows[3], *grows[3];
  for (int64_t bh = begin; bh < end; ++bh) {
    image_rows(g, gp, bh, s.zeros.data(), grows);
    dw_row(grows, C, W, C, a.flipped_taps, f.ld, static_cast<const T*>(nullptr),
           a.dx + bh * W * C, C);
    image_rows(g, f.x, bh, s.zeros.data(), xrows);
    dw_row_weight_grad(xrows, f.x.sw, W, C, a.grad_pre + bh * W * C, C, a.dtaps, f.ld, a.dbias);
  }
}

}  // namespace ASID_CPU_ISA
}  // namespace cpu
}  // namespace asid
