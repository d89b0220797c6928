// CPU kernels of channel attention (ops/channel_attention.h). Each worker thread runs a kernel
// once per op call over the op's WorkQueue of pixel groups.
//
// Tiles per group (n pixels, C channels, np/Cp padded to whole vectors): pixel-major row tiles (n x Cp) and
// channel-major tiles (C x np); the C x C matrices are (C x Cp). The L2 normalisation is never
// applied to the tiles: it is folded into the C x C matrices as row/column scales rq, rk.
#pragma once

#include <cmath>

#include "cpu/bf16_products.h"
#include "cpu/tile_io.h"
#include "cpu/tile_math.h"
#include "ops/channel_attention.h"

namespace asid {
namespace cpu {
namespace ASID_CPU_ISA {

template <typename T>
inline T inverse_norm(T sum_of_squares) {
  const T norm = std::sqrt(sum_of_squares);
  return T(1) / (norm > T(kNormEps) ? norm : T(kNormEps));
}

// r[c] = 1 / max(||row c||, eps) for the `rows` rows (length n, stride ld) of a channel-major tile.
template <typename T>
inline void inverse_row_norms(const T* x, int64_t rows, int64_t n, int64_t ld, T* r) {
  for (int64_t c = 0; c < rows; ++c) r[c] = inverse_norm(dot(x + c * ld, x + c * ld, n));
}

// The same for the columns (c < cols) of a pixel-major tile (n rows of ld, a multiple of the
// vector width): written to r and to the zero-padded row rp (ld).
template <typename T>
inline void inverse_column_norms(const T* x, int64_t n, int64_t cols, int64_t ld, T* rp, T* r) {
  constexpr int L = lanes<T>();
  for (int64_t c = 0; c < ld; c += L) {
    vec_t<T> sum{};
    for (int64_t m = 0; m < n; ++m) {
      const vec_t<T> xm = vload(x + m * ld + c);
      sum += xm * xm;
    }
    vstore(rp + c, sum);
  }
  for (int64_t c = 0; c < ld; ++c) rp[c] = c < cols ? (r[c] = inverse_norm(rp[c])) : T(0);
}

// row[e] *= scale * w[e] for e < ld (whole vectors).
template <typename T>
inline void scale_row(T* row, T scale, const T* w, int64_t ld) {
  constexpr int L = lanes<T>();
  const vec_t<T> s = vsplat(scale);
  for (int64_t e = 0; e < ld; e += L) vstore(row + e, vload(row + e) * s * vload(w + e));
}

template <typename T>
void channel_forward(const ChannelFwdArgs<T>& a, WorkQueue& queue) {
  const GroupLayout& l = a.layout;
  const int64_t n = l.group_size(), C = a.channels, np = pad_lanes(n), cp = pad_lanes(C);
  const T temperature = *a.temperature;
  const Tiles<T, 6> tiles({{C, np}, {n, cp}, {n, cp}, {C, cp, false}, {C, cp, false},
                           {1, cp, false}});
  const TileSet<T>&qt = tiles[0], &k = tiles[1], &v = tiles[2];  // k then holds the output
  T *s = tiles[3].data, *at = tiles[4].data, *rkp = tiles[5].data;
  for_each_batch(queue, tiles.batch(), [&](int64_t, int64_t g0, int64_t count) {
    const GatherTarget<T> inputs[] = {{a.q, T(1), {}, qt}, {a.k, T(1), k, {}}, {a.v, T(1), v, {}}};
    gather(l, g0, count, C, inputs);
    for (int64_t b = 0; b < count; ++b) {
      const int64_t g = g0 + b;
      T *rq = a.rq + g * C, *rk = a.rk + g * C;
      inverse_row_norms(qt.at(b), C, n, np, rq);
      inverse_column_norms(k.at(b), n, C, cp, rkp, rk);
      // raw Gram matrix q^T k
      tile_products(a.bf16_products, C, cp, n, qt.at(b), np, k.at(b), cp, s, cp);
      for (int64_t c = 0; c < C; ++c) scale_row(s + c * cp, temperature * rq[c], rkp, cp);
      softmax_rows(s, C, C, cp, a.attn + g * C * C, C);
      transpose_tile(s, cp, C, C, at, cp);
      // out[m, c] = sum_e attn[c, e] v[m, e]
      tile_products(a.bf16_products, n, cp, C, v.at(b), cp, at, cp, k.at(b), cp);
    }
    const ScatterSource<T> outputs[] = {{a.out, T(1), k}};
    scatter(l, g0, count, C, outputs);
  });
}

// x[m * ld + c] = sx[c] * x[m * ld + c] - sy[c] * y[m * ld + c] for m < n, c < cols.
template <typename T>
inline void combine_columns(T* x, const T* sx, const T* y, const T* sy, int64_t n, int64_t cols,
                            int64_t ld) {
  for (int64_t m = 0; m < n; ++m)
    for (int64_t c = 0; c < cols; ++c)
      x[m * ld + c] = sx[c] * x[m * ld + c] - sy[c] * y[m * ld + c];
}

// With G = qn kn^T and dS = softmax'(dA), dA = dO^T v: dtemperature partial += sum(dS . G);
// dqn = t dS kn, dkn = t dS^T qn; dq = rq (dqn - qn <qn, dqn>) per channel row (rq dqn where the
// norm was clamped), likewise dk; dv = dO attn. The row dots <qn_c, dqn_c> = t sum_e dS G (c, e).
template <typename T>
void channel_backward(const ChannelBwdArgs<T>& a, WorkQueue& queue) {
  const GroupLayout& l = a.layout;
  const int64_t n = l.group_size(), C = a.channels, np = pad_lanes(n), cp = pad_lanes(C);
  const T temperature = *a.temperature;
  const Tiles<T, 19> tiles({{n, cp}, {C, np}, {n, cp}, {n, cp}, {n, cp}, {C, np}, {n, cp},
                            {n, cp}, {C, cp, false}, {C, cp, false}, {C, cp, false},
                            {C, cp, false}, {C, cp, false}, {1, cp, false}, {1, cp, false},
                            {1, cp, false}, {1, cp, false}, {1, cp, false}, {C, cp, false}});
  const TileSet<T>&q = tiles[0], &qt = tiles[1], &k = tiles[2], &v = tiles[3];  // v then dv
  const TileSet<T>&go = tiles[4], &got = tiles[5], &dq = tiles[6], &dk = tiles[7];
  T *gram = tiles[8].data, *ds = tiles[9].data, *p = tiles[10].data, *bq = tiles[11].data;
  T* bk = tiles[12].data;
  // per-channel coefficients of dq = sq * (k bq) - cq * q and dk = sk * (q bk) - ck * k
  T *sq = tiles[13].data, *cq = tiles[14].data, *sk = tiles[15].data, *ck = tiles[16].data;
  T *rkp = tiles[17].data, *bq_t = tiles[18].data;  // rk zero padded; (rk . dS), then bq
  const T unclamped_limit = T(1) / T(kNormEps);  // r < this <=> the norm was not clamped
  for_each_batch(queue, tiles.batch(), [&](int64_t part, int64_t g0, int64_t count) {
    const GatherTarget<T> inputs[] = {{a.q, T(1), q, qt}, {a.k, T(1), k, {}}, {a.v, T(1), v, {}},
                                      {a.grad_out, T(1), go, got}};
    gather(l, g0, count, C, inputs);
    for (int64_t b = 0; b < count; ++b) {
      const int64_t g = g0 + b;
      const T *rq = a.rq + g * C, *rk = a.rk + g * C;
      gemm(C, cp, n, qt.at(b), np, k.at(b), cp, gram, cp);
      gemm(C, cp, n, got.at(b), np, v.at(b), cp, ds, cp);  // dA[c, e] = sum_m dO[m, c] v[m, e]
      copy_matrix(a.attn + g * C * C, C, C, C, p, cp);
      softmax_backward_rows(p, cp, ds, cp, C, C);
      constexpr int L = lanes<T>();
      for (int64_t e = 0; e < cp; ++e) {
        rkp[e] = e < C ? rk[e] : T(0);
        ck[e] = 0;
      }
      for (int64_t c = 0; c < C; ++c) {  // dS's columns past C are zero, and so every product
        const T* dsr = ds + c * cp;
        const vec_t<T> r = vsplat(rq[c]);
        vec_t<T> row_dot{};
        for (int64_t e = 0; e < cp; e += L) {
          const vec_t<T> d = vload(dsr + e), w = vload(rkp + e);
          const vec_t<T> dsg = d * r * w * vload(gram + c * cp + e);
          row_dot += dsg;  // row dots / t, finished below
          vstore(ck + e, vload(ck + e) + dsg);
          vstore(bk + c * cp + e, r * d);  // dkn = t q (rq . dS)
          vstore(bq_t + c * cp + e, w * d);  // dqn = t k (rk . dS)^T
        }
        cq[c] = hsum<T>(row_dot);
      }
      transpose_tile(bq_t, cp, C, C, bq, cp);
      for (int64_t c = 0; c < C; ++c) {
        a.dtemperature[part] += cq[c];
        sq[c] = temperature * rq[c];
        sk[c] = temperature * rk[c];
        cq[c] = rq[c] < unclamped_limit ? temperature * rq[c] * rq[c] * cq[c] : T(0);
        ck[c] = rk[c] < unclamped_limit ? temperature * rk[c] * rk[c] * ck[c] : T(0);
      }
      gemm(n, cp, C, k.at(b), cp, bq, cp, dq.at(b), cp);
      gemm(n, cp, C, q.at(b), cp, bk, cp, dk.at(b), cp);
      gemm(n, cp, C, go.at(b), cp, p, cp, v.at(b), cp);
      combine_columns(dq.at(b), sq, q.at(b), cq, n, C, cp);
      combine_columns(dk.at(b), sk, k.at(b), ck, n, C, cp);
    }
    const ScatterSource<T> outputs[] = {{a.dq, T(1), dq}, {a.dk, T(1), dk}, {a.dv, T(1), v}};
    scatter(l, g0, count, C, outputs);
  });
}

ASID_INSTANTIATE_CPU_KERNEL(channel_forward, ChannelFwdArgs)
ASID_INSTANTIATE_CPU_KERNEL(channel_backward, ChannelBwdArgs)

}  // namespace ASID_CPU_ISA
}  // namespace cpu
}  // namespace asid
