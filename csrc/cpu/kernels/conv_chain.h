// CPU kernel of the row-streamed convolution chain (ops/conv_chain.h): LayerNorm -> 1x1 conv ->
// depthwise 3x3 + epilogue -> 1x1 conv + residual, one image row at a time. The 1x1 output of the
// three image rows under the 3x3 kernel lives in a ring of three row buffers, so no intermediate
// map is ever written to memory: each worker reads x and writes out once.
#pragma once

#include <algorithm>
#include <utility>

#include "cpu/row_ops.h"
#include "cpu/work_queue.h"
#include "ops/conv_chain.h"

namespace asid {
namespace cpu {
namespace ASID_CPU_ISA {

template <typename T>
struct ChainScratch {
  int64_t ld_k, ld_mid;
  ScratchVector<T> ring;  // 3 image rows of the first 1x1 conv: W x ld_in each
  int64_t tag[3] = {-1, -1, -1};  // which image row (b * H + h) each ring slot holds
  ScratchVector<T> a, pre, mid, o, zeros;

  ChainScratch(const ConvChainArgs<T>& c, int64_t n_mid)
      : ld_k(pad_lanes(c.grid.channels)),
        ld_mid(pad_lanes(n_mid)),
        ring(3 * c.grid.width * c.ld_in),
        a(c.norm_weight ? c.grid.width * ld_k : 0),
        pre(c.grid.width * c.ld_in),
        mid(c.grid.width * ld_mid),
        o(c.w_out ? c.grid.width * c.ld_out : 0),
        zeros(c.grid.width * c.ld_in) {}
};

// The first 1x1 conv of image row bh into its ring slot (computed once per worker and row).
template <typename T>
const T* chain_project_row(const ConvChainArgs<T>& c, ChainScratch<T>& s, int64_t bh) {
  constexpr int L = lanes<T>();
  const RowGrid& g = c.grid;
  const int64_t K = g.channels, W = g.width, slot = bh % 3;
  T* p = s.ring.data() + slot * W * c.ld_in;
  if (s.tag[slot] == bh) return p;
  s.tag[slot] = bh;
  const T* a = g.row(c.x, bh * W);  // the gemm's A: x read in place, or LayerNorm(x)
  int64_t lda = c.x.sw;
  if (c.norm_weight) {
    for (int64_t w = 0; w < W; ++w) {
      T mean, rstd;
      normalize_row(a + w * c.x.sw, K, c.norm_weight, c.norm_bias, T(c.eps),
                    s.a.data() + w * s.ld_k, &mean, &rstd);
    }
    a = s.a.data();
    lda = s.ld_k;
  }
  const int64_t n_in = pad_lanes(c.n_in);  // columns computed (the rest of ld_in stays zero)
  gemm(W, n_in, K, a, lda, c.w_in, c.ld_in, p, c.ld_in);
  if (c.b_in || c.gelu_in) {
    for (int64_t w = 0; w < W; ++w)
      for (int64_t n = 0; n < n_in; n += L) {
        vec_t<T> v = vload(p + w * c.ld_in + n);
        if (c.b_in) v += vload(c.b_in + n);
        vstore(p + w * c.ld_in + n, c.gelu_in ? gelu(v) : v);
      }
  }
  return p;
}

// m of image row bh: the projected row itself without taps (in its ring slot), else the
// epilogue of the depthwise conv over the three projected rows around it, written to dst (row
// stride ldd). Returns m's row and its stride.
template <typename T>
std::pair<const T*, int64_t> chain_mid_row(const ConvChainArgs<T>& c, ChainScratch<T>& s,
                                           int64_t bh, int64_t n_mid, T* dst, int64_t ldd) {
  const int64_t W = c.grid.width, H = c.grid.height, h = bh % H, ld = c.ld_in;
  if (!c.taps) return {chain_project_row(c, s, bh), ld};
  const T* rows[3];
  for (int dy = 0; dy < 3; ++dy) {
    const int64_t y = h + dy - 1;
    rows[dy] = (y >= 0 && y < H) ? chain_project_row(c, s, bh + dy - 1) : s.zeros.data();
  }
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
      gemm(W, pad_lanes(K), n_mid, m, ldm, c.w_out, c.ld_out, s.o.data(), c.ld_out);
      T* out = c.out + bh * W * K;
      for (int64_t w = 0; w < W; ++w) {
        const T* xr = g.row(c.x, bh * W + w);
        for_channel_vectors<T>(K, [&](int64_t k, auto full) {
          constexpr bool F = decltype(full)::value;
          store_c<F>(out + w * K + k, load_c<F>(xr + k, K) + vload(s.o.data() + w * c.ld_out + k), K);
        });
      }
    }
  });
}

ASID_INSTANTIATE_CPU_KERNEL(conv_chain, ConvChainArgs)

}  // namespace ASID_CPU_ISA
}  // namespace cpu
}  // namespace asid
