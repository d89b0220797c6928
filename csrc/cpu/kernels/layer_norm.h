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

// dx and the part's partials of dweight and dbias (normalize_row_backward). Work range: pixel
// rows.
template <typename T>
void layer_norm_backward(const LayerNormBwdArgs<T>& a, WorkQueue& queue) {
  const int64_t C = a.grid.channels;
  queue.for_each_part([&](int64_t part, int64_t begin, int64_t end) {
    T* dweight = a.dweight + part * 2 * a.ld;
    T* dbias = a.dbias + part * 2 * a.ld;
    for (int64_t r = begin; r < end; ++r)
      normalize_row_backward(a.grid.row(a.x, r), a.grad_y + r * C, C, a.weight, a.mean[r],
                             a.rstd[r], a.dx + r * C, dweight, dbias);
  });
}

ASID_INSTANTIATE_CPU_KERNEL(layer_norm_forward, LayerNormFwdArgs)
ASID_INSTANTIATE_CPU_KERNEL(layer_norm_backward, LayerNormBwdArgs)

}  // namespace ASID_CPU_ISA
}  // namespace cpu
}  // namespace asid
