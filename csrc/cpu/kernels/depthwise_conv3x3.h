// CPU kernels of the depthwise 3x3 convolution with its epilogue (ops/depthwise_conv3x3.h). Work
// range: image rows (B * H).
#pragma once

#include "cpu/row_ops.h"
#include "cpu/work_queue.h"
#include "ops/depthwise_conv3x3.h"

namespace asid {
namespace cpu {
namespace ASID_CPU_ISA {

// out = epilogue(conv(x)). The convolution of a row is written first (into out for "none" /
// "gelu", into scratch for "gate"), then the epilogue sweeps the row.
template <typename T>
void dwconv_forward(const DwconvFwdArgs<T>& a, WorkQueue& queue) {
  const RowGrid& g = a.grid;
  const int64_t C = g.channels, W = g.width;
  DwconvScratch<T> s(g, a.x.sw);
  const T* rows[3];
  queue.for_each_part([&](int64_t, int64_t begin, int64_t end) {
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
  });
}

// grad_pre of image row bh (the gradient at the convolution's output) into dst (W x C): from
// grad_out and the recomputed convolution (epilogue_grad_row). `pre` is a W x C scratch row.
template <typename T>
inline void grad_pre_row(const DwconvBwdArgs<T>& a, int64_t bh, const T* zeros, T* pre, T* dst) {
  const DwconvFwdArgs<T>& f = a.fwd;
  const RowGrid& g = f.grid;
  const int64_t C = g.channels, W = g.width;
  const T* rows[3];
  image_rows(g, f.x, bh, zeros, rows);
  dw_row(rows, f.x.sw, W, C, f.taps, f.ld, f.bias, pre, C);
  const int64_t cout = f.epilogue == Epilogue::kGate ? C / 2 : C;  // grad_out's channels
  epilogue_grad_row(f.epilogue, pre, C, a.grad_out + bh * W * cout, cout, W, C, dst, C);
}

// dx = conv(grad_pre, flipped taps); the part's partial: dtaps[t] += grad_pre x[pixel +
// offset(t)], dbias += grad_pre. For the GELU / gate epilogues grad_pre is computed row by row
// into a ring of the three rows the flipped kernel reads (never stored as a map); for "none" it
// is grad_out.
template <typename T>
void dwconv_backward(const DwconvBwdArgs<T>& a, WorkQueue& queue) {
  const DwconvFwdArgs<T>& f = a.fwd;
  const RowGrid& g = f.grid;
  const int64_t C = g.channels, W = g.width, H = g.height;
  const bool none = f.epilogue == Epilogue::kNone;
  DwconvScratch<T> s(g, f.x.sw);
  ScratchVector<T> ring(none ? 0 : 3 * W * C);
  int64_t tag[3] = {-1, -1, -1};  // the image row each ring slot holds
  const auto grad_pre = [&](int64_t bh) -> const T* {
    if (none) return a.grad_out + bh * W * C;
    T* dst = ring.data() + (bh % 3) * W * C;
    if (tag[bh % 3] != bh) {
      tag[bh % 3] = bh;
      grad_pre_row(a, bh, s.zeros.data(), s.row.data(), dst);
    }
    return dst;
  };
  const T *xrows[3], *grows[3];
  queue.for_each_part([&](int64_t part, int64_t begin, int64_t end) {
    T* dtaps = a.dtaps + part * 10 * f.ld;
    for (int64_t bh = begin; bh < end; ++bh) {
      const int64_t h = bh % H;
      for (int dy = 0; dy < 3; ++dy)
        grows[dy] = (h + dy - 1 >= 0 && h + dy - 1 < H) ? grad_pre(bh + dy - 1) : s.zeros.data();
      dw_row(grows, C, W, C, a.flipped_taps, f.ld, static_cast<const T*>(nullptr),
             a.dx + bh * W * C, C);
      image_rows(g, f.x, bh, s.zeros.data(), xrows);
      dw_row_weight_grad(xrows, f.x.sw, W, C, grows[1], C, dtaps, f.ld,
                         a.dbias + part * 10 * f.ld);
    }
  });
}

ASID_INSTANTIATE_CPU_KERNEL(dwconv_forward, DwconvFwdArgs)
ASID_INSTANTIATE_CPU_KERNEL(dwconv_backward, DwconvBwdArgs)

}  // namespace ASID_CPU_ISA
}  // namespace cpu
}  // namespace asid
