// Moving pixel groups between channels-last maps and contiguous scratch tiles.
// Included only by cpu/kernels_impl.h (per-ISA namespace, see tile_math.h).
//
// Kernels work on batches of consecutive groups: their pixels are gathered member by member across
// the batch, because consecutive groups usually sit side by side in the map (adjacent pixels for
// "global" windows and "cell" groups, adjacent 8-pixel runs for "meso" windows), which turns
// scattered single-pixel reads into long sequential runs.
#pragma once

#include "../common/group_layout.h"
#include "kernel_table.h"

namespace asid {
namespace cpu {
namespace ASID_CPU_ISA {

constexpr int64_t kMaxBatch = 8;

// Groups per batch: as many as fit a ~256 KiB tile budget (L2-sized), between 1 and kMaxBatch.
inline int64_t batch_size(int64_t tile_bytes_per_group) {
  const int64_t fit = (int64_t(256) << 10) / (tile_bytes_per_group > 0 ? tile_bytes_per_group : 1);
  return fit < 1 ? 1 : (fit > kMaxBatch ? kMaxBatch : fit);
}

// Calls fn(part, g0, count) for each batch of groups [g0, g0 + count) of each part taken from
// the queue.
template <typename F>
inline void for_each_batch(WorkQueue& queue, int64_t batch, const F& fn) {
  int64_t part, begin, end;
  while (queue.take(&part, &begin, &end))
    for (int64_t g0 = begin; g0 < end; g0 += batch)
      fn(part, g0, g0 + batch < end ? batch : end - g0);
}

// One tile per group of a batch: tile t starts at data + t * size, rows have stride ld.
template <typename T>
struct TileSet {
  T* data = nullptr;
  int64_t ld = 0;
  int64_t size = 0;
  T* at(int64_t t) const { return data + t * size; }
};

// Calls fn(t, m, mi, mj) for every member m = (mi, mj) (row-major) of groups g0 + t, t < count.
// Visits pixels in address order along W whether the batch's groups are interleaved with each
// other (global windows, cell groups) or placed side by side (meso windows), so reads run
// sequentially.
template <typename F>
inline void for_each_member(const GroupLayout& l, int64_t count, const F& fn) {
  const bool members_inner = l.member_step_w <= l.group_step_w;
  for (int64_t mi = 0; mi < l.members_h; ++mi) {
    const int64_t row = mi * l.members_w;
    if (members_inner) {
      for (int64_t t = 0; t < count; ++t)
        for (int64_t mj = 0; mj < l.members_w; ++mj) fn(t, row + mj, mi, mj);
    } else {
      for (int64_t mj = 0; mj < l.members_w; ++mj)
        for (int64_t t = 0; t < count; ++t) fn(t, row + mj, mi, mj);
    }
  }
}

// Pixel addresses of the members of a batch of groups in one map.
template <typename P>
struct BatchPixels {
  P* origin[kMaxBatch];
  int64_t step_h = 0, step_w = 0;
  BatchPixels() = default;
  BatchPixels(const MapView<P>& map, const GroupLayout& l, int64_t g0, int64_t count)
      : step_h(l.member_step_h * map.sh), step_w(l.member_step_w * map.sw) {
    for (int64_t t = 0; t < count; ++t) origin[t] = map.data + group_origin(map, l, g0 + t);
  }
  P* at(int64_t t, int64_t mi, int64_t mj) const { return origin[t] + mi * step_h + mj * step_w; }
};

template <typename T>
struct NonDeduced {
  using type = T;
};

// One map to gather: channel c < d of member m of group g0 + t goes to
// rows.at(t)[m * rows.ld + c] and/or cols.at(t)[c * cols.ld + m], times scale (null tile sets
// are skipped).
template <typename T>
struct GatherTarget {
  const MapView<const T>& map;
  T scale;
  TileSet<T> rows, cols;
};

// Gathers N maps in one pass over the pixels (q, k, v views of one projection are read as one
// sequential stream).
template <typename T, int N>
inline void gather(const GroupLayout& l, int64_t g0, int64_t count, int64_t d,
                   const GatherTarget<T> (&targets)[N]) {
  BatchPixels<const T> pixels[N] = {};
  for (int i = 0; i < N; ++i) pixels[i] = BatchPixels<const T>(targets[i].map, l, g0, count);
  for_each_member(l, count, [&](int64_t t, int64_t m, int64_t mi, int64_t mj) {
    for (int i = 0; i < N; ++i) {
      const GatherTarget<T>& g = targets[i];
      const T* x = pixels[i].at(t, mi, mj);
      if (g.rows.data) {
        T* r = g.rows.at(t) + m * g.rows.ld;
        for (int64_t c = 0; c < d; ++c) r[c] = g.scale * x[c];
      }
      if (g.cols.data) {
        T* col = g.cols.at(t) + m;
        const int64_t ld = g.cols.ld;
        for (int64_t c = 0; c < d; ++c, col += ld) *col = g.scale * x[c];
      }
    }
  });
}

// Inverse of a row gather: x[c] = scale * rows.at(t)[m * rows.ld + c], for N maps in one pass.
template <typename T>
struct ScatterSource {
  const MapView<T>& map;
  T scale;
  TileSet<T> rows;
};

template <typename T, int N>
inline void scatter(const GroupLayout& l, int64_t g0, int64_t count, int64_t d,
                    const ScatterSource<T> (&sources)[N]) {
  BatchPixels<T> pixels[N] = {};
  for (int i = 0; i < N; ++i) pixels[i] = BatchPixels<T>(sources[i].map, l, g0, count);
  for_each_member(l, count, [&](int64_t t, int64_t m, int64_t mi, int64_t mj) {
    for (int i = 0; i < N; ++i) {
      T* x = pixels[i].at(t, mi, mj);
      const T* r = sources[i].rows.at(t) + m * sources[i].rows.ld;
      for (int64_t c = 0; c < d; ++c) x[c] = sources[i].scale * r[c];
    }
  });
}

// Shape of a scratch tile; a batched shape gets one tile per group of the batch.
struct TileShape {
  int64_t rows, ld;
  bool batched = true;
};

// The scratch tiles of a kernel, carved from one zero-initialised allocation (padding that is
// never written stays zero). The batch size follows from the batched tiles' footprint.
template <typename T, int N>
class Tiles {
 public:
  explicit Tiles(const TileShape (&shapes)[N]) {
    int64_t per_group = 0, shared = 0;
    for (const TileShape& s : shapes) (s.batched ? per_group : shared) += s.rows * s.ld;
    batch_ = batch_size(per_group * int64_t(sizeof(T)));
    base_ = new T[batch_ * per_group + shared]();
    T* p = base_;
    for (int i = 0; i < N; ++i) {
      set_[i] = TileSet<T>{p, shapes[i].ld, shapes[i].rows * shapes[i].ld};
      p += (shapes[i].batched ? batch_ : 1) * set_[i].size;
    }
  }
  ~Tiles() { delete[] base_; }
  Tiles(const Tiles&) = delete;
  Tiles& operator=(const Tiles&) = delete;
  const TileSet<T>& operator[](int i) const { return set_[i]; }
  int64_t batch() const { return batch_; }

 private:
  T* base_;
  TileSet<T> set_[N];
  int64_t batch_;
};

constexpr int64_t pad8(int64_t x) { return (x + 7) / 8 * 8; }

}  // namespace ASID_CPU_ISA
}  // namespace cpu
}  // namespace asid
