// CPU kernel of the row-streamed convolution chain (ops/conv_chain.h): LayerNorm -> 1x1 conv ->
// depthwise 3x3 + epilogue -> 1x1 conv + residual, one image row at a time. The 1x1 output of the
// three image rows under the 3x3 kernel lives in a ring of three row buffers, so no intermediate
// map is ever written to memory: each worker reads x and writes out once.
#pragma once

#include <algorithm>
#include <utility>

#include "cpu/bf16_products.h"
#include "cpu/row_ops.h"
#include "cpu/work_queue.h"
#include "ops/conv_chain.h"

namespace asid {
namespace cpu {
namespace ASID_CPU_ISA {

// Image row bh's first 1x1 conv. a = LayerNorm(x) into a_buf (row stride ld_a; the pixels'
// mean and rstd into stats[0, W) and stats[W, 2W)), else x read in place, or copied into a_buf
// when copy_x; pre = a W_in^T + b_in (padded columns) into pre, then p = GELU(pre) if gelu_in,
// else pre, into p (p may be pre: in place). Returns a and its row stride.
template <typename T>
std::pair<const T*, int64_t> project_row(const ConvChainArgs<T>& c, int64_t bh, T* a_buf,
                                         int64_t ld_a, bool copy_x, T* stats, T* pre, T* p) {
  constexpr int L = lanes<T>();
  const RowGrid& g = c.grid;
  const int64_t K = g.channels, W = g.width;
  const T* a = g.row(c.x, bh * W);  // the gemm's A
  int64_t lda = c.x.sw;
  if (c.norm_weight) {
    normalize_rows(
        W, K, [&](int64_t w) { return a + w * c.x.sw; }, c.norm_weight, c.norm_bias, T(c.eps),
        [&](int64_t w) { return a_buf + w * ld_a; }, stats, stats + W);
  } else if (copy_x) {
    for (int64_t w = 0; w < W; ++w)
      for_channel_vectors<T>(K, [&](int64_t k, auto full) {
        constexpr bool F = decltype(full)::value;
        store_c<F>(a_buf + w * ld_a + k, load_c<F>(a + w * c.x.sw + k, K), K);
      });
  }
  if (c.norm_weight || copy_x) {
    a = a_buf;
    lda = ld_a;
  }
  const int64_t n_in = pad_lanes(c.n_in);  // columns computed (the rest of ld_in stays zero)
  products(W, n_in, K, a, lda, c.w_in, c.w_in_pairs, c.ld_in, pre, c.ld_in);
  if (c.b_in || c.gelu_in || p != pre) {
    for (int64_t w = 0; w < W; ++w)
      for (int64_t n = 0; n < n_in; n += L) {
        vec_t<T> v = vload(pre + w * c.ld_in + n);
        if (c.b_in) v += vload(c.b_in + n);
        if (p != pre) vstore(pre + w * c.ld_in + n, v);
        vstore(p + w * c.ld_in + n, c.gelu_in ? gelu(v) : v);
      }
  }
  return {a, lda};
}

template <typename T>
struct ChainScratch {
  int64_t ld_k, ld_mid;
  ScratchVector<T> ring;  // 3 image rows of the first 1x1 conv: W x ld_in each
  int64_t tag[3] = {-1, -1, -1};  // which image row (b * H + h) each ring slot holds
  ScratchVector<T> a, stats, pre, mid, o, zeros;

  ChainScratch(const ConvChainArgs<T>& c, int64_t n_mid)
      : ld_k(pad_lanes(c.grid.channels)),
        ld_mid(pad_lanes(n_mid)),
        ring(3 * c.grid.width * c.ld_in),
        a(c.norm_weight ? c.grid.width * ld_k : 0),
        stats(2 * c.grid.width),
        pre(c.grid.width * c.ld_in),
        mid(c.grid.width * ld_mid),
        o(c.w_out ? c.grid.width * c.ld_out : 0),
        zeros(c.grid.width * c.ld_in) {}
};

// The first 1x1 conv of image row bh into its ring slot (computed once per worker and row).
template <typename T>
const T* chain_project_row(const ConvChainArgs<T>& c, ChainScratch<T>& s, int64_t bh) {
  const int64_t slot = bh % 3;
  T* p = s.ring.data() + slot * c.grid.width * c.ld_in;
  if (s.tag[slot] == bh) return p;
  s.tag[slot] = bh;
  project_row(c, bh, s.a.data(), s.ld_k, false, s.stats.data(), p, p);
  return p;
}

// m of image row bh: the projected row itself without taps (in its ring slot), else the
// epilogue of the depthwise conv over the three projected rows around it, written to dst (row
// stride ldd). Returns m's row and its stride.
template <typename T>
std::pair<const T*, int64_t> chain_mid_row(const ConvChainArgs<T>& c, ChainScratch<T>& s,
                                           int64_t bh, int64_t n_mid, T* dst, int64_t ldd) {
  const int64_t W = c.grid.width, ld = c.ld_in;
  if (!c.taps) return {chain_project_row(c, s, bh), ld};
  const T* rows[3];
  rows_around(bh, c.grid.height, s.zeros.data(),
              [&](int64_t r) { return chain_project_row(c, s, r); }, rows);
  if (c.epilogue == Epilogue::kGate) {
    dw_row(rows, ld, W, c.n_in, c.taps, ld, c.b_dw, s.pre.data(), ld);
    gate_row(s.pre.data(), W, c.n_in, ld, dst, ldd);
    return {dst, ldd};
  }
  dw_row(rows, ld, W, c.n_in, c.taps, ld, c.b_dw, dst, ldd);  // n_mid = n_in: straight to dst
  if (c.epilogue == Epilogue::kGelu)  // in place, so flat: never twice on one lane
    map_flat(W * ldd, dst, [&](int64_t i, int64_t k) { return gelu(load_n(dst + i, k)); });
  return {dst, ldd};
}

// Work range: image rows (B * H).
template <typename T>
void conv_chain(const ConvChainArgs<T>& c, WorkQueue& queue) {
  const RowGrid& g = c.grid;
  const int64_t K = g.channels, W = g.width;
  const int64_t n_mid = c.epilogue == Epilogue::kGate ? c.n_in / 2 : c.n_in;
  ChainScratch<T> s(c, n_mid);
  queue.for_each_part([&](int64_t, int64_t begin, int64_t end) {
    for (int64_t bh = begin; bh < end; ++bh) {
      if (!c.w_out) {  // out = m
        T* out = c.out + bh * W * n_mid;
        const auto [m, ldm] = chain_mid_row(c, s, bh, n_mid, out, n_mid);
        if (m == out) continue;
        for (int64_t w = 0; w < W; ++w)
          for_channel_vectors<T>(n_mid, [&](int64_t k, auto full) {
            store_c<decltype(full)::value>(out + w * n_mid + k, vload(m + w * ldm + k), n_mid);
          });
        continue;
      }
      const auto [m, ldm] = chain_mid_row(c, s, bh, n_mid, s.mid.data(), s.ld_mid);
      products(W, pad_lanes(K), n_mid, m, ldm, c.w_out, c.w_out_pairs, c.ld_out, s.o.data(),
               c.ld_out);
      T* out = c.out + bh * W * K;
      for (int64_t w = 0; w < W; ++w) {
        const T* xr = g.row(c.x, bh * W + w);
        for_channel_vectors<T>(K, [&](int64_t k, auto full) {
          constexpr bool F = decltype(full)::value;
          store_c<F>(out + w * K + k,
                     load_c<F>(xr + k, K) + vload(s.o.data() + w * c.ld_out + k), K);
        });
      }
    }
  });
}

// Scratch of the backward: rings of image rows, each slot tagged with the image row it holds.
// Four rows of the projection (a, its LayerNorm statistics, pre and p; a row's weight gradient
// reads rows bh - 1 .. bh + 1 while the depthwise gradient of row bh + 1 needs row bh + 2), three
// of the gradient at the depthwise conv's output and of m; single rows for the rest.
template <typename T>
struct ChainBwdScratch {
  ScratchVector<T> a, stats, pre, p, grad_s, m, s, grad_m, grad_p, grad_a, zeros;
  int64_t p_tag[4] = {-1, -1, -1, -1}, s_tag[3] = {-1, -1, -1};

  ChainBwdScratch(const ConvChainBwdArgs<T>& b)
      : a(4 * b.fwd.grid.width * b.ld_k),
        stats(4 * 2 * b.fwd.grid.width),
        pre(b.fwd.gelu_in ? 4 * b.fwd.grid.width * b.fwd.ld_in : 0),
        p(4 * b.fwd.grid.width * b.fwd.ld_in),
        grad_s(3 * b.fwd.grid.width * b.fwd.ld_in),
        m(b.fwd.w_out ? 3 * b.fwd.grid.width * b.ld_mid : 0),
        s(b.fwd.grid.width * b.fwd.ld_in),
        grad_m(b.fwd.grid.width * b.ld_mid),
        grad_p(b.fwd.grid.width * b.fwd.ld_in),
        grad_a(b.fwd.grid.width * b.ld_k),
        zeros(b.fwd.grid.width * b.fwd.ld_in) {}
};

// Work range: image rows (B * H). Per row bh of a part: the gradient at the depthwise conv's
// output (grad_s; the three rows around bh, recomputing the forward from x), the part's weight
// gradients of row bh (W_out, taps, b_dw), the transposed depthwise conv to the gradient of p,
// GELU's derivative, W_in's and b_in's gradients, the gradient of a, then LayerNorm's backward
// (and its weights') and the residual into dx. Rows next to a part are recomputed by both parts;
// only a part's own rows add to its sums.
template <typename T>
void conv_chain_backward(const ConvChainBwdArgs<T>& b, WorkQueue& queue) {
  const ConvChainArgs<T>& c = b.fwd;
  const RowGrid& g = c.grid;
  const int64_t K = g.channels, W = g.width, H = g.height, n_in = c.n_in, ld_in = c.ld_in;
  const int64_t ld_k = b.ld_k, ld_mid = b.ld_mid;
  const int64_t n_mid = c.epilogue == Epilogue::kGate ? n_in / 2 : n_in;
  const int64_t k_out = c.w_out ? K : n_mid;  // channels of out
  const int64_t cols_k = pad_lanes(K), cols_mid = pad_lanes(n_mid);
  const ChainGradLayout layout(K, ld_k, n_in, ld_in, ld_mid);
  ChainBwdScratch<T> s(b);

  const auto project = [&](int64_t r) {  // ring slot of image row r's projection
    const int64_t slot = r % 4;
    if (s.p_tag[slot] != r) {
      s.p_tag[slot] = r;
      T* p = s.p.data() + slot * W * ld_in;
      project_row(c, r, s.a.data() + slot * W * ld_k, ld_k, true, s.stats.data() + slot * 2 * W,
                  c.gelu_in ? s.pre.data() + slot * W * ld_in : p, p);
    }
    return slot;
  };
  const auto p_row = [&](int64_t r) -> const T* { return s.p.data() + project(r) * W * ld_in; };
  // grad_s of image row r (and m of row r, for W_out's gradient) in their ring slots
  const auto grad_s_row = [&](int64_t r) -> const T* {
    const int64_t slot = r % 3;
    T* ds = s.grad_s.data() + slot * W * ld_in;
    if (s.s_tag[slot] == r) return ds;
    s.s_tag[slot] = r;
    const T* pre = s.s.data();  // the depthwise conv's output (p itself without one)
    if (c.taps) {
      const T* rows[3];
      rows_around(r, H, s.zeros.data(), p_row, rows);
      dw_row(rows, ld_in, W, n_in, c.taps, ld_in, c.b_dw, s.s.data(), ld_in);
    } else {
      pre = p_row(r);
    }
    const T* gm = b.grad_out + r * W * k_out;  // the gradient of m
    int64_t ldg = k_out;
    if (c.w_out) {
      T* m = s.m.data() + slot * W * ld_mid;
      if (c.epilogue == Epilogue::kGate) {
        gate_row(pre, W, n_in, ld_in, m, ld_mid);
      } else {
        for (int64_t w = 0; w < W; ++w)
          for_channel_vectors<T>(n_mid, [&](int64_t k, auto full) {
            constexpr bool F = decltype(full)::value;
            const vec_t<T> v = load_c<F>(pre + w * ld_in + k, n_mid);
            store_c<F>(m + w * ld_mid + k, c.epilogue == Epilogue::kGelu ? gelu(v) : v, n_mid);
          });
      }
      gemm(W, cols_mid, K, gm, K, b.w_out_rows, ld_mid, s.grad_m.data(), ld_mid);
      gm = s.grad_m.data();
      ldg = ld_mid;
    }
    epilogue_grad_row(c.epilogue, pre, ld_in, gm, ldg, W, n_in, ds, ld_in);
    return ds;
  };

  queue.for_each_part([&](int64_t part, int64_t begin, int64_t end) {
    T* sums = b.partials + part * layout.size;
    for (int64_t bh = begin; bh < end; ++bh) {
      const T* ds = grad_s_row(bh);
      const T* go = b.grad_out + bh * W * k_out;
      if (c.w_out)  // dW_out += grad_out^T m
        gemm_at(K, cols_mid, W, go, K, s.m.data() + (bh % 3) * W * ld_mid, ld_mid,
                sums + layout.w_out, ld_mid, sums + layout.w_out, ld_mid);
      T* dp = s.grad_p.data();
      if (c.taps) {
        const T* rows[3];
        rows_around(bh, H, s.zeros.data(), p_row, rows);
        dw_row_weight_grad(rows, ld_in, W, n_in, ds, ld_in, sums + layout.taps, ld_in,
                           sums + layout.b_dw);
        rows_around(bh, H, s.zeros.data(), grad_s_row, rows);
        dw_row(rows, ld_in, W, n_in, b.flipped_taps, ld_in, static_cast<const T*>(nullptr), dp,
               ld_in);
      } else {
        std::copy_n(ds, W * ld_in, dp);
      }
      const int64_t slot = project(bh);
      if (c.gelu_in) {  // through GELU at pre
        const T* pre = s.pre.data() + slot * W * ld_in;
        map_flat(W * ld_in, dp, [&](int64_t i, int64_t k) {
          vec_t<T> slope;
          gelu_and_grad(load_n(pre + i, k), &slope);
          return load_n(dp + i, k) * slope;
        });
      }
      add_pixel_sums<T>(W, n_in, sums + layout.b_in, [&](int64_t w, int64_t k, auto full) {
        return load_c<decltype(full)::value>(dp + w * ld_in + k, n_in);
      });
      const T* a = s.a.data() + slot * W * ld_k;
      gemm_at(n_in, cols_k, W, dp, ld_in, a, ld_k, sums + layout.w_in, ld_k, sums + layout.w_in,
              ld_k);  // dW_in += grad_p^T a
      T* da = s.grad_a.data();
      gemm(W, cols_k, n_in, dp, ld_in, b.w_in_rows, ld_k, da, ld_k);
      T* dx = b.dx + bh * W * K;
      const T* stats = s.stats.data() + slot * 2 * W;
      if (!c.norm_weight) {  // dx = da (+ the residual's grad_out)
        for (int64_t w = 0; w < W; ++w)
          for_channel_vectors<T>(K, [&](int64_t k, auto full) {
            constexpr bool F = decltype(full)::value;
            const vec_t<T> v = load_c<F>(da + w * ld_k + k, K);
            store_c<F>(dx + w * K + k, c.w_out ? v + load_c<F>(go + w * K + k, K) : v, K);
          });
        continue;
      }
      norm_param_grads<T>(
          W, K, [&](int64_t w) { return g.row(c.x, bh * W + w); },
          [&](int64_t w) { return da + w * ld_k; }, [&](int64_t w) { return stats[w]; },
          [&](int64_t w) { return stats[W + w]; }, sums + layout.norm_weight,
          sums + layout.norm_bias);
      normalize_rows_backward(
          W, K, [&](int64_t w) { return g.row(c.x, bh * W + w); },
          [&](int64_t w) { return da + w * ld_k; }, c.norm_weight, stats, stats + W,
          [&](int64_t w) { return dx + w * K; });
      if (c.w_out)  // the residual (in place, so flat)
        map_flat(W * K, dx,
                 [&](int64_t i, int64_t k) { return load_n(dx + i, k) + load_n(go + i, k); });
    }
  });
}

ASID_INSTANTIATE_CPU_KERNEL(conv_chain, ConvChainArgs)
ASID_INSTANTIATE_CPU_KERNEL(conv_chain_backward, ConvChainBwdArgs)

}  // namespace ASID_CPU_ISA
}  // namespace cpu
}  // namespace asid
