// CPU kernel of the attention block (ops/attention_block.h): per batch of windows, x is gathered
// once; LayerNorm, the projections, the attention, the output projection and the residual run on
// each window's tiles, and only out (and attn) go back to memory. The op by op composition
// writes and reads q, k, v and the attention output as whole maps in between.
//
// Tiles as in window_attention.h: row tiles (n x dp) one token per row, K^T (d x np) one
// channel per row.
#pragma once

#include "cpu/bf16_products.h"
#include "cpu/row_ops.h"
#include "cpu/row_softmax.h"
#include "cpu/tile_io.h"
#include "cpu/tile_math.h"
#include "ops/attention_block.h"

namespace asid {
namespace cpu {
namespace ASID_CPU_ISA {

// Work range: windows.
template <typename T>
void attention_block_forward(const AttentionBlockArgs<T>& a, WorkQueue& queue) {
  const GroupLayout& l = a.layout;
  const int64_t n = l.group_size(), d = a.dim, np = pad_lanes(n), dp = pad_lanes(d);
  const int64_t ld_in = a.projections * a.ld_w;
  // batched: x and out of each window; one window at a time: LayerNorm(x), q (then the
  // attention output), k, K^T, v, the scores
  const Tiles<T, 8> tiles({{n, dp}, {n, dp}, {n, dp, false}, {n, dp, false}, {n, dp, false},
                           {d, np, false}, {n, dp, false}, {n, np, false}});
  const TileSet<T>&xs = tiles[0], &ys = tiles[1];
  T *ln = tiles[2].data, *q = tiles[3].data, *k = tiles[4].data, *kt = tiles[5].data;
  T *v = tiles[6].data, *s = tiles[7].data;
  const vec_t<T> scale = vsplat(T(a.scale));
  const bool bf16 = a.w_in_pairs != nullptr;  // every product in bf16, the scores' too
  const auto project = [&](int j, T* out) {  // out = LayerNorm(x) W_j^T, j: q, k, v or v only
    products(n, dp, d, ln, dp, a.w_in + j * a.ld_w, bf16 ? a.w_in_pairs + j * a.ld_w : nullptr,
             ld_in, out, dp);
  };
  for_each_batch(queue, tiles.batch(), [&](int64_t, int64_t g0, int64_t count) {
    const GatherTarget<T> inputs[] = {{a.x, T(1), xs, {}}};
    gather(l, g0, count, d, inputs);
    for (int64_t b = 0; b < count; ++b) {
      const T* x = xs.at(b);
      normalize_rows(
          n, d, [&](int64_t m) { return x + m * dp; }, a.norm_weight, a.norm_bias, T(a.eps),
          [&](int64_t m) { return ln + m * dp; });
      const int64_t g = g0 + b;
      const T* p = a.attn_in ? a.attn_in + g * n * n : a.attn_out + g * n * n;
      if (a.projections == 3) {
        project(0, q);
        map_flat(n * dp, q, [&](int64_t i, int64_t c) { return load_n(q + i, c) * scale; });
        project(1, k);
        transpose_tile(k, dp, n, d, kt, np);
        project(2, v);
        scores_softmax(n, d, q, dp, kt, np, a.bias, a.attn_out + g * n * n, s, bf16);
      } else {
        project(0, v);
      }
      tile_products(bf16, n, dp, n, p, n, v, dp, q, dp);  // o = attn v, in q's tile
      // out = x + o W_out^T
      products(n, dp, d, q, dp, a.w_out, a.w_out_pairs, a.ld_w, ys.at(b), dp, x, dp);
    }
    const ScatterSource<T> outputs[] = {{a.out, T(1), ys}};
    scatter(l, g0, count, d, outputs);
  });
}

ASID_INSTANTIATE_CPU_KERNEL(attention_block_forward, AttentionBlockArgs)

}  // namespace ASID_CPU_ISA
}  // namespace cpu
}  // namespace asid
