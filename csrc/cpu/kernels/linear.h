// CPU kernel of the fused per-pixel linear map (ops/linear.h): one image row at a time, the gemm
// reads each input in place through its strides (the concatenation is a split of the
// reduction), and bias, residual and the sigmoid gate are applied while the row is stored.
#pragma once

#include <algorithm>

#include "cpu/row_ops.h"
#include "cpu/work_queue.h"
#include "ops/linear.h"

namespace asid {
namespace cpu {
namespace ASID_CPU_ISA {

// Work range: image rows (B * H).
template <typename T>
void linear(const LinearArgs<T>& a, WorkQueue& queue) {
  const RowGrid& g = a.grid;
  const int64_t N = g.channels, W = g.width;
  ScratchVector<T> acc(W * a.ld_n);
  queue.for_each_part([&](int64_t, int64_t begin, int64_t end) {
    for (int64_t bh = begin; bh < end; ++bh) {
      const int64_t b = bh / g.height, h = bh % g.height;
      const T* w_t = a.w_t + b * a.w_image_stride;
      for (int i = 0; i < a.inputs; ++i) {
        const MapView<const T>& x = a.x[i];
        gemm(W, pad_lanes(N), a.k[i], x.data + b * x.sb + h * x.sh, x.sw, w_t, a.ld_n, acc.data(),
             a.ld_n, i > 0 ? acc.data() : nullptr, a.ld_n);  // inputs after the first add up
        w_t += a.k[i] * a.ld_n;
      }
      const auto pixel = [&](const MapView<const T>& m, int64_t w) {
        return m.data ? m.data + b * m.sb + h * m.sh + w * m.sw : nullptr;
      };
      T* out = a.out + bh * W * N;
      for (int64_t w = 0; w < W; ++w) {
        const T *res = pixel(a.residual, w), *gate = pixel(a.gate, w);
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

ASID_INSTANTIATE_CPU_KERNEL(linear, LinearArgs)

}  // namespace ASID_CPU_ISA
}  // namespace cpu
}  // namespace asid
