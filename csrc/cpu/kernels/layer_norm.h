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
    normalize_rows(
        end - begin, C, [&](int64_t i) { return a.grid.row(a.x, begin + i); }, a.weight, a.bias,
        T(a.eps), [&](int64_t i) { return a.y + (begin + i) * C; }, a.mean + begin,
        a.rstd + begin);
  });
}

// dx (normalize_rows_backward) and the part's partials of dweight and dbias (norm_param_grads),
// in blocks of pixels that stay in cache between the two. Work range: pixel rows.
template <typename T>
void layer_norm_backward(const LayerNormBwdArgs<T>& a, WorkQueue& queue) {
  constexpr int64_t kBlock = 64;
  const int64_t C = a.grid.channels;
  queue.for_each_part([&](int64_t part, int64_t begin, int64_t end) {
    for (int64_t r0 = begin; r0 < end; r0 += kBlock) {
      const int64_t n = std::min(kBlock, end - r0);
      normalize_rows_backward(
          n, C, [&](int64_t p) { return a.grid.row(a.x, r0 + p); },
          [&](int64_t p) { return a.grad_y + (r0 + p) * C; }, a.weight, a.mean + r0, a.rstd + r0,
          [&](int64_t p) { return a.dx + (r0 + p) * C; });
      norm_param_grads<T>(
          n, C, [&](int64_t p) { return a.grid.row(a.x, r0 + p); },
          [&](int64_t p) { return a.grad_y + (r0 + p) * C; },
          [&](int64_t p) { return a.mean[r0 + p]; }, [&](int64_t p) { return a.rstd[r0 + p]; },
          a.dweight + part * 2 * a.ld, a.dbias + part * 2 * a.ld);
    }
  });
}

ASID_INSTANTIATE_CPU_KERNEL(layer_norm_forward, LayerNormFwdArgs)
ASID_INSTANTIATE_CPU_KERNEL(layer_norm_backward, LayerNormBwdArgs)

}  // namespace ASID_CPU_ISA
}  // namespace cpu
}  // namespace asid
