// CPU kernels of the fused per-pixel linear map (ops/linear.h), one image row at a time. The
// forward's gemm reads each input in place through its strides (the concatenation is a split of
// the reduction), and bias, residual and the sigmoid gate are applied while the row is stored.
// The backward reads the gradient once per row for every input's gradient and the weight's.
#pragma once

#include <algorithm>

#include "cpu/bf16_products.h"
#include "cpu/row_ops.h"
#include "cpu/work_queue.h"
#include "ops/linear.h"

namespace asid {
namespace cpu {
namespace ASID_CPU_ISA {

// [x_0 | x_1 | ...] W^T of image row (b, h) into acc (W x ld_n); bf16 products where
// a.w_pairs is given.
template <typename T>
void row_products(const LinearArgs<T>& a, int64_t b, int64_t h, T* acc) {
  const T* w_t = a.w_t + b * a.w_image_stride;
  const uint32_t* pairs = a.w_pairs ? a.w_pairs + b * a.w_pairs_image_stride : nullptr;
  for (int i = 0; i < a.inputs; ++i) {
    const MapView<const T>& x = a.x[i];
    // inputs after the first add up
    products(a.grid.width, pad_lanes(a.grid.channels), a.k[i], x.data + b * x.sb + h * x.sh,
             x.sw, w_t, pairs, a.ld_n, acc, a.ld_n, i > 0 ? acc : nullptr, a.ld_n);
    w_t += a.k[i] * a.ld_n;
    if (pairs) pairs += (a.k[i] + 1) / 2 * a.ld_n;
  }
}

// Pixel w of image row (b, h) of an optional map (null without one).
template <typename T>
const T* map_pixel(const MapView<const T>& m, int64_t b, int64_t h, int64_t w) {
  return m.data ? m.data + b * m.sb + h * m.sh + w * m.sw : nullptr;
}

// Work range: image rows (B * H).
template <typename T>
void linear(const LinearArgs<T>& a, WorkQueue& queue) {
  const RowGrid& g = a.grid;
  const int64_t N = g.channels, W = g.width;
  ScratchVector<T> acc(W * a.ld_n);
  queue.for_each_part([&](int64_t, int64_t begin, int64_t end) {
    for (int64_t bh = begin; bh < end; ++bh) {
      const int64_t b = bh / g.height, h = bh % g.height;
      row_products(a, b, h, acc.data());
      T* out = a.out + bh * W * N;
      for (int64_t w = 0; w < W; ++w) {
        const T *res = map_pixel(a.residual, b, h, w), *gate = map_pixel(a.gate, b, h, w);
        for_channel_vectors<T>(N, [&](int64_t n, auto full) {
          constexpr bool F = decltype(full)::value;
          vec_t<T> v = vload(acc.data() + w * a.ld_n + n);
          if (a.bias) v += vload(a.bias + n);
          if (res) v += load_c<F>(res + n, N);
          if (gate) v = load_c<F>(gate + n, N) * sigmoid(v);
          store_c<F>(out + w * N + n, v, N);
        });
      }
    }
  });
}

// Work range: image rows (B * H). Per row: g (through the recomputed gate, if any), the bias
// sums, then per input dx_i = g W_i and dW_i += g^T x_i in whole vectors (pad_lanes(k_i)
// columns): when k_i is shorter, dx_i goes through a scratch row and x_i is copied into a
// zero-padded one, so that no vector reads or writes past a pixel's channels.
template <typename T>
void linear_backward(const LinearBwdArgs<T>& bw, WorkQueue& queue) {
  const LinearArgs<T>& a = bw.fwd;
  const RowGrid& g = a.grid;
  const int64_t N = g.channels, W = g.width, ld_n = a.ld_n, ld_w = bw.ld_w;
  const bool per_image = bw.w_rows_image_stride != 0;
  const LinearGradLayout layout(N, ld_n, ld_w, per_image ? g.batch : 1);
  int64_t k_max = 0;
  for (int i = 0; i < a.inputs; ++i) k_max = std::max(k_max, pad_lanes(a.k[i]));
  ScratchVector<T> pre(a.gate.data ? W * ld_n : 0), g_pre(a.gate.data ? W * ld_n : 0);
  ScratchVector<T> x_row(W * k_max), dx_row(W * k_max);
  queue.for_each_part([&](int64_t part, int64_t begin, int64_t end) {
    T* sums = bw.partials + part * layout.size;
    for (int64_t bh = begin; bh < end; ++bh) {
      const int64_t b = bh / g.height, h = bh % g.height;
      const T* gr = bw.grad + bh * W * N;  // the gradient at pre, row stride ldg
      int64_t ldg = N;
      if (a.gate.data) {
        row_products(a, b, h, pre.data());
        for (int64_t w = 0; w < W; ++w) {
          const T *res = map_pixel(a.residual, b, h, w), *gate = map_pixel(a.gate, b, h, w);
          const int64_t o = (bh * W + w) * N;
          for_channel_vectors<T>(N, [&](int64_t n, auto full) {
            constexpr bool F = decltype(full)::value;
            vec_t<T> v = vload(pre.data() + w * ld_n + n);
            if (a.bias) v += vload(a.bias + n);
            if (res) v += load_c<F>(res + n, N);
            const vec_t<T> s = sigmoid(v), go = load_c<F>(bw.grad + o + n, N);
            const vec_t<T> gp = go * load_c<F>(gate + n, N) * s * (vsplat<T>(1) - s);
            store_c<F>(bw.d_gate + o + n, go * s, N);
            if (bw.d_pre) store_c<F>(bw.d_pre + o + n, gp, N);
            store_c<F>(g_pre.data() + w * ld_n + n, gp, N);
          });
        }
        gr = g_pre.data();
        ldg = ld_n;
      }
      add_pixel_sums<T>(W, N, sums + layout.bias, [&](int64_t w, int64_t n, auto full) {
        return load_c<decltype(full)::value>(gr + w * ldg + n, N);
      });
      const T* w_rows = bw.w_rows + b * bw.w_rows_image_stride;
      T* dw = sums + layout.w + (per_image ? b * layout.w_image_stride : 0);
      for (int i = 0; i < a.inputs; ++i) {
        const int64_t k = a.k[i], cols = pad_lanes(k), col = bw.w_col[i];
        T* dx = bw.dx[i] + bh * W * k;
        const bool whole = k == cols;  // dx_i's rows are whole vectors: written in place
        gemm(W, cols, N, gr, ldg, w_rows + col, ld_w, whole ? dx : dx_row.data(),
             whole ? k : cols);
        const MapView<const T>& x = a.x[i];
        const T* xr = x.data + b * x.sb + h * x.sh;
        int64_t ldx = x.sw;
        if (!whole) {
          for (int64_t w = 0; w < W; ++w) {
            for_channel_vectors<T>(k, [&](int64_t c, auto full) {
              constexpr bool F = decltype(full)::value;
              store_c<F>(dx + w * k + c, vload(dx_row.data() + w * cols + c), k);
            });
            std::fill_n(x_row.data() + w * cols + k, cols - k, T(0));
            std::copy_n(xr + w * x.sw, k, x_row.data() + w * cols);
          }
          xr = x_row.data();
          ldx = cols;
        }
        gemm_at(N, cols, W, gr, ldg, xr, ldx, dw + col, ld_w, dw + col, ld_w);
      }
    }
  });
}

ASID_INSTANTIATE_CPU_KERNEL(linear, LinearArgs)
ASID_INSTANTIATE_CPU_KERNEL(linear_backward, LinearBwdArgs)

}  // namespace ASID_CPU_ISA
}  // namespace cpu
}  // namespace asid
