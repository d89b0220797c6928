// CPU kernels of LayerNorm over the channels of each pixel (ops/layer_norm.h).
#pragma once

#include "cpu/row_ops.h"
#include "cpu/work_queue.h"
#include "ops/layer_norm.h"

namespace asid {
namespace cpu {
namespace ASID_CPU_ISA {

// Work range: pixel rows.
template <typename T>
void layer_norm_forward(const LayerNormFwdArgs<T>& a, WorkQueue& queue) {
  const int64_t C = a.grid.channels;
  queue.for_each_part([&](int64_t, int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r)
      normalize_row(a.grid.row(a.x, r), C, a.weight, a.bias, T(a.eps), a.y + r * C, a.mean + r,
                    a.rstd + r);
  });
}

// dx = rstd (g w - mean(g w) - xhat mean(g w xhat)); the part's partials: dweight += g xhat,
// dbias += g. Work range: pixel rows.
template <typename T>
void layer_norm_backward(const LayerNormBwdArgs<T>& a, WorkQueue& queue) {
  const int64_t C = a.grid.channels;
  queue.for_each_part([&](int64_t part, int64_t begin, int64_t end) {
    T* dweight = a.dweight + part * 2 * a.ld;
    T* dbias = a.dbias + part * 2 * a.ld;
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
        vstore(dweight + c, vload(dweight + c) + gv * xh);
        vstore(dbias + c, vload(dbias + c) + gv);
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
  });
}

ASID_INSTANTIATE_CPU_KERNEL(layer_norm_forward, LayerNormFwdArgs)
ASID_INSTANTIATE_CPU_KERNEL(layer_norm_backward, LayerNormBwdArgs)

}  // namespace ASID_CPU_ISA
}  // namespace cpu
}  // namespace asid
