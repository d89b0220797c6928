// CPU kernels of window attention and the shared-attention apply (ops/window_attention.h). Each
// worker thread runs a kernel once per op call over the op's WorkQueue of windows.
//
// Tiles per window (n = w*w tokens, d channels, np/dp padded to whole vectors): row tiles (n x dp) hold one
// token per row, transposed tiles (d x np) one channel per row, so every product is a row-major
// gemm (or gemm_at) with the vectorised dimension last. Windows are processed in batches (see
// tile_io.h).
#pragma once

#include "cpu/row_softmax.h"
#include "cpu/tile_io.h"
#include "cpu/tile_math.h"
#include "ops/window_attention.h"

namespace asid {
namespace cpu {
namespace ASID_CPU_ISA {

template <typename T>
void window_forward(const WindowFwdArgs<T>& a, WorkQueue& queue) {
  const GroupLayout& l = a.layout;
  const int64_t n = l.group_size(), d = a.dim, np = pad_lanes(n), dp = pad_lanes(d);
  const Tiles<T, 4> tiles({{n, dp}, {d, np}, {n, dp}, {n, np, false}});
  const TileSet<T>&qs = tiles[0], &kt = tiles[1], &v = tiles[2];  // qs then holds the output
  T* s = tiles[3].data;
  for_each_batch(queue, tiles.batch(), [&](int64_t, int64_t g0, int64_t count) {
    const GatherTarget<T> inputs[] = {{a.q, T(a.scale), qs, {}}, {a.k, T(1), {}, kt},
                                      {a.v, T(1), v, {}}};
    gather(l, g0, count, d, inputs);
    for (int64_t b = 0; b < count; ++b) {
      T* p = a.attn + (g0 + b) * n * n;
      scores_softmax(n, d, qs.at(b), dp, kt.at(b), np, a.bias, p, s);
      gemm(n, dp, n, p, n, v.at(b), dp, qs.at(b), dp);
    }
    const ScatterSource<T> outputs[] = {{a.out, T(1), qs}};
    scatter(l, g0, count, d, outputs);
  });
}

// dV = P^T dO; dS = softmax'(dO V^T + grad_attn); dQ = scale dS K; dK = dS^T (scale Q);
// the part's dbias partial += dS.
template <typename T>
void window_backward(const WindowBwdArgs<T>& a, WorkQueue& queue) {
  const GroupLayout& l = a.layout;
  const int64_t n = l.group_size(), d = a.dim, np = pad_lanes(n), dp = pad_lanes(d);
  const Tiles<T, 7> tiles({{n, dp}, {n, dp}, {d, np}, {n, dp}, {n, dp}, {n, dp}, {n, np, false}});
  const TileSet<T>&qs = tiles[0], &k = tiles[1], &vt = tiles[2], &go = tiles[3];  // go then dQ
  const TileSet<T>&dv = tiles[4], &dk = tiles[5];
  T* ds = tiles[6].data;
  for_each_batch(queue, tiles.batch(), [&](int64_t part, int64_t g0, int64_t count) {
    const GatherTarget<T> inputs[] = {{a.q, T(a.scale), qs, {}}, {a.k, T(1), k, {}},
                                      {a.v, T(1), {}, vt}, {a.grad_out, T(1), go, {}}};
    gather(l, g0, count, d, inputs);
    for (int64_t b = 0; b < count; ++b) {
      const int64_t g = g0 + b;
      const T* p = a.attn + g * n * n;
      const T* grad_attn = a.grad_attn ? a.grad_attn + g * n * n : nullptr;
      gemm_at(n, dp, n, p, n, go.at(b), dp, dv.at(b), dp);
      softmax_grad(n, d, go.at(b), dp, vt.at(b), np, grad_attn, p, ds,
                   a.dbias ? a.dbias + part * n * n : nullptr);
      gemm(n, dp, n, ds, np, k.at(b), dp, go.at(b), dp);
      gemm_at(n, dp, n, ds, np, qs.at(b), dp, dk.at(b), dp);
    }
    const ScatterSource<T> outputs[] = {{a.dq, T(a.scale), go}, {a.dk, T(1), dk}, {a.dv, T(1), dv}};
    scatter(l, g0, count, d, outputs);
  });
}

template <typename T>
void shared_forward(const SharedFwdArgs<T>& a, WorkQueue& queue) {
  const GroupLayout& l = a.layout;
  const int64_t n = l.group_size(), d = a.dim, dp = pad_lanes(d);
  const Tiles<T, 2> tiles({{n, dp}, {n, dp}});
  const TileSet<T>&v = tiles[0], &o = tiles[1];
  for_each_batch(queue, tiles.batch(), [&](int64_t, int64_t g0, int64_t count) {
    const GatherTarget<T> inputs[] = {{a.v, T(1), v, {}}};
    gather(l, g0, count, d, inputs);
    for (int64_t b = 0; b < count; ++b)
      gemm(n, dp, n, a.attn + (g0 + b) * n * n, n, v.at(b), dp, o.at(b), dp);
    const ScatterSource<T> outputs[] = {{a.out, T(1), o}};
    scatter(l, g0, count, d, outputs);
  });
}

// dattn = dO V^T; dV = attn^T dO.
template <typename T>
void shared_backward(const SharedBwdArgs<T>& a, WorkQueue& queue) {
  const GroupLayout& l = a.layout;
  const int64_t n = l.group_size(), d = a.dim, np = pad_lanes(n), dp = pad_lanes(d);
  const Tiles<T, 4> tiles({{d, np}, {n, dp}, {n, dp}, {n, np, false}});
  const TileSet<T>&vt = tiles[0], &go = tiles[1], &dv = tiles[2];
  T* dattn = tiles[3].data;
  for_each_batch(queue, tiles.batch(), [&](int64_t, int64_t g0, int64_t count) {
    const GatherTarget<T> inputs[] = {{a.v, T(1), {}, vt}, {a.grad_out, T(1), go, {}}};
    gather(l, g0, count, d, inputs);
    for (int64_t b = 0; b < count; ++b) {
      const int64_t offset = (g0 + b) * n * n;
      if (n == np) {  // rows of whole vectors: straight into the output
        gemm(n, np, d, go.at(b), dp, vt.at(b), np, a.dattn + offset, n);
      } else {
        gemm(n, np, d, go.at(b), dp, vt.at(b), np, dattn, np);
        copy_matrix(dattn, np, n, n, a.dattn + offset, n);
      }
      gemm_at(n, dp, n, a.attn + offset, n, go.at(b), dp, dv.at(b), dp);
    }
    const ScatterSource<T> outputs[] = {{a.dv, T(1), dv}};
    scatter(l, g0, count, d, outputs);
  });
}

ASID_INSTANTIATE_CPU_KERNEL(window_forward, WindowFwdArgs)
ASID_INSTANTIATE_CPU_KERNEL(window_backward, WindowBwdArgs)
ASID_INSTANTIATE_CPU_KERNEL(shared_forward, SharedFwdArgs)
ASID_INSTANTIATE_CPU_KERNEL(shared_backward, SharedBwdArgs)

}  // namespace ASID_CPU_ISA
}  // namespace cpu
}  // namespace asid
