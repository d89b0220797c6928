// Moving pixel groups between channels-last maps and contiguous scratch tiles.
// Included only by the kernel headers (per-ISA namespace, see tile_math.h).
//
// Kernels work on batches of consecutive groups: their pixels are gathered member by member across
// the batch, because consecutive groups usually sit side by side in the map (adjacent pixels for
// "global" windows and "cell" groups, adjacent 8-pixel runs for "meso" windows), which turns
// scattered single-pixel reads into long sequential runs.
#pragma once

#include <algorithm>
#include <vector>

#include "common/layout.h"
#include "cpu/tile_math.h"
#include "cpu/work_queue.h"

namespace asid {
namespace cpu {
namespace ASID_CPU_ISA {

constexpr int64_t kMaxBatch = 8;

// Bytes of batched tiles, which set the batch size: about half of a 512 KiB L2.
constexpr int64_t kTileBudget = int64_t(256) << 10;

// Groups per batch: as many as fit the budget, between 1 and kMaxBatch.
inline int64_t batch_size(int64_t tile_bytes_per_group, int64_t budget) {
  const int64_t fit = budget / (tile_bytes_per_group > 0 ? tile_bytes_per_group : 1);
  return fit < 1 ? 1 : (fit > kMaxBatch ? kMaxBatch : fit);
}

// Calls fn(part, g0, count) for the batches [g0, g0 + count) of each part taken from the queue.
template <typename F>
inline void for_each_batch(WorkQueue& queue, int64_t batch, const F& fn) {
  queue.for_each_part([&](int64_t part, int64_t begin, int64_t end) {
    for (int64_t g0 = begin; g0 < end; g0 += batch) fn(part, g0, std::min(batch, end - g0));
  });
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

// One map to gather: channel c < d of member m of group g0 + t goes to
// rows.at(t)[m * rows.ld + c] and/or cols.at(t)[c * cols.ld + m], times scale (null tile sets
// are skipped). Tile rows are padded to whole vectors (rows.ld and cols.ld multiples of the width), and
// the padding receives zeros.
template <typename T>
struct GatherTarget {
  const MapView<const T>& map;
  T scale;
  TileSet<T> rows, cols;
};

// r[c] = scale * x[c] for c < d, in whole vectors: r has room for the last one, whose lanes past
// d get zeros (x is read only up to d).
template <typename T>
ASID_VEC_INLINE void load_channels(const T* x, vec_t<T> scale, int64_t d, T* r) {
  constexpr int L = lanes<T>();
  int64_t c = 0;
  for (; c + L <= d; c += L) vstore(r + c, vload(x + c) * scale);
  if (c < d) vstore(r + c, load_n(x + c, d - c) * scale);
}

// x[c] = scale * r[c] for c < d (x is written only up to d).
template <typename T>
ASID_VEC_INLINE void store_channels(const T* r, vec_t<T> scale, int64_t d, T* x) {
  constexpr int L = lanes<T>();
  int64_t c = 0;
  for (; c + L <= d; c += L) vstore(x + c, vload(r + c) * scale);
  if (c < d) store_n(x + c, vload(r + c) * scale, d - c);
}

// In-register transpose of a lanes x lanes block: afterwards r[j][i] is the former r[i][j]. 32-byte
// vectors: the unpack and lane-permute network of AVX2 (3 steps of in-lane pair shuffles).
ASID_VEC_INLINE void transpose_block(vec_n<float, 8> (&r)[8]) {
  vec_n<float, 8> t[8], u[8];
  for (int i = 0; i < 8; i += 2) {
    t[i] = __builtin_shufflevector(r[i], r[i + 1], 0, 8, 1, 9, 4, 12, 5, 13);
    t[i + 1] = __builtin_shufflevector(r[i], r[i + 1], 2, 10, 3, 11, 6, 14, 7, 15);
  }
  for (int i = 0; i < 8; i += 4)
    for (int h = 0; h < 2; ++h) {
      u[i + 2 * h] = __builtin_shufflevector(t[i + h], t[i + h + 2], 0, 1, 8, 9, 4, 5, 12, 13);
      u[i + 2 * h + 1] =
          __builtin_shufflevector(t[i + h], t[i + h + 2], 2, 3, 10, 11, 6, 7, 14, 15);
    }
  for (int j = 0; j < 4; ++j) {
    r[j] = __builtin_shufflevector(u[j], u[j + 4], 0, 1, 2, 3, 8, 9, 10, 11);
    r[j + 4] = __builtin_shufflevector(u[j], u[j + 4], 4, 5, 6, 7, 12, 13, 14, 15);
  }
}
ASID_VEC_INLINE void transpose_block(vec_n<double, 4> (&r)[4]) {
  using V = vec_n<double, 4>;
  const V t0 = __builtin_shufflevector(r[0], r[1], 0, 4, 2, 6);
  const V t1 = __builtin_shufflevector(r[0], r[1], 1, 5, 3, 7);
  const V t2 = __builtin_shufflevector(r[2], r[3], 0, 4, 2, 6);
  const V t3 = __builtin_shufflevector(r[2], r[3], 1, 5, 3, 7);
  r[0] = __builtin_shufflevector(t0, t2, 0, 1, 4, 5);
  r[1] = __builtin_shufflevector(t1, t3, 0, 1, 4, 5);
  r[2] = __builtin_shufflevector(t0, t2, 2, 3, 6, 7);
  r[3] = __builtin_shufflevector(t1, t3, 2, 3, 6, 7);
}

// Rows i and i + B, for i with bit B clear, exchange the entries whose column has bit B set in
// row i with those whose column has it clear in row i + B (lo: the new row i, hi: the new row
// i + B). Doing it for every bit B swaps each entry's row and column bits: the transpose.
template <int B, int L>
struct BlockSwapLo {
  static constexpr int at(size_t k) { return (k & B) ? L + (int(k) ^ B) : int(k); }
};
template <int B, int L>
struct BlockSwapHi {
  static constexpr int at(size_t k) { return (k & B) ? L + int(k) : (int(k) ^ B); }
};

// Wider vectors: the block-swap network (log2(lanes) steps of two-source shuffles).
template <int B = 1, typename V, int L>
ASID_VEC_INLINE void transpose_block(V (&r)[L]) {
  if constexpr (B < L) {
    for (int i = 0; i < L; ++i) {
      if (i & B) continue;
      const V a = r[i], b = r[i | B];
      r[i] = shuffle<BlockSwapLo<B, L>, L>(a, b);
      r[i | B] = shuffle<BlockSwapHi<B, L>, L>(a, b);
    }
    transpose_block<2 * B>(r);
  }
}

// dst[j * ldd + i] = src[i * lds + j] for i < rows, j < cols: lanes x lanes blocks in registers,
// the edges one element at a time.
template <typename T>
inline void transpose_tile(const T* src, int64_t lds, int64_t rows, int64_t cols, T* dst,
                           int64_t ldd) {
  constexpr int L = lanes<T>();
  const int64_t rows_b = rows / L * L, cols_b = cols / L * L;
  for (int64_t i0 = 0; i0 < rows_b; i0 += L)
    for (int64_t j0 = 0; j0 < cols_b; j0 += L) {
      vec_t<T> r[L];
      for (int i = 0; i < L; ++i) r[i] = vload(src + (i0 + i) * lds + j0);
      transpose_block(r);
      for (int j = 0; j < L; ++j) vstore(dst + (j0 + j) * ldd + i0, r[j]);
    }
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = i < rows_b ? cols_b : 0; j < cols; ++j) dst[j * ldd + i] = src[i * lds + j];
}

// Columns [m0, m0 + lanes) of a channel-major tile (col points at column m0, rows of stride ld):
// channel c of member m0 + i read at px[i][c] for i < members, zeros for the others; lanes
// members at a time, so each tile row gets whole vectors (one register transpose per lanes
// channels instead of a scattered store per element).
template <typename T>
inline void gather_member_columns(const T* const* px, int members, vec_t<T> scale, int64_t d,
                                  T* col, int64_t ld) {
  constexpr int L = lanes<T>();
  for (int64_t c = 0; c < d; c += L) {
    const int64_t channels = d - c < L ? d - c : L;
    vec_t<T> r[L];
    for (int i = 0; i < L; ++i)
      r[i] = i < members ? load_n(px[i] + c, channels) * scale : vec_t<T>{};
    transpose_block(r);
    for (int j = 0; j < channels; ++j) vstore(col + (c + j) * ld, r[j]);
  }
}

// Gathers N maps: the row targets in one pass over the pixels in address order (q, k, v views of
// one projection are read as one sequential stream), then the column targets group by group,
// lanes members at a time (their pixels are mostly in cache by then).
template <typename T, int N>
inline void gather(const GroupLayout& l, int64_t g0, int64_t count, int64_t d,
                   const GatherTarget<T> (&targets)[N]) {
  constexpr int L = lanes<T>();
  BatchPixels<const T> pixels[N] = {};
  for (int i = 0; i < N; ++i) pixels[i] = BatchPixels<const T>(targets[i].map, l, g0, count);
  for_each_member(l, count, [&](int64_t t, int64_t m, int64_t mi, int64_t mj) {
    for (int i = 0; i < N; ++i) {
      const TileSet<T>& rows = targets[i].rows;
      if (rows.data)
        load_channels(pixels[i].at(t, mi, mj), vsplat(targets[i].scale), d,
                      rows.at(t) + m * rows.ld);
    }
  });
  const int64_t n = l.group_size();
  for (int i = 0; i < N; ++i) {
    const TileSet<T>& cols = targets[i].cols;
    if (!cols.data) continue;
    for (int64_t t = 0; t < count; ++t)
      for (int64_t m0 = 0; m0 < n; m0 += L) {
        const int members = n - m0 < L ? int(n - m0) : L;
        const T* px[L];
        for (int j = 0; j < members; ++j)
          px[j] = pixels[i].at(t, (m0 + j) / l.members_w, (m0 + j) % l.members_w);
        gather_member_columns(px, members, vsplat(targets[i].scale), d, cols.at(t) + m0, cols.ld);
      }
  }
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
      const TileSet<T>& rows = sources[i].rows;
      store_channels(rows.at(t) + m * rows.ld, vsplat(sources[i].scale), d,
                     pixels[i].at(t, mi, mj));
    }
  });
}

// Shape of a scratch tile; a batched shape gets one tile per group of the batch.
struct TileShape {
  int64_t rows, ld;
  bool batched = true;
};

// Memory for the tiles of the calling thread's kernels, kept between calls (it only grows): a
// fresh allocation of a few hundred KiB is handed back to the system when freed and page-faults
// again on the next call.
template <typename T>
T* thread_tile_memory(int64_t count) {
  thread_local ScratchVector<T> memory;
  if (int64_t(memory.size()) < count) memory.resize(count);
  return memory.data();
}

// The scratch tiles of a kernel, carved from the thread's tile memory, zeroed (padding that is
// never written stays zero) and cache-line aligned. The batch size follows from the batched
// tiles' footprint and the budget. One Tiles per thread at a time.
template <typename T, int N>
class Tiles {
 public:
  explicit Tiles(const TileShape (&shapes)[N], int64_t budget = kTileBudget) {
    int64_t per_group = 0, shared = 0;
    for (const TileShape& s : shapes) (s.batched ? per_group : shared) += s.rows * s.ld;
    batch_ = batch_size(per_group * int64_t(sizeof(T)), budget);
    const int64_t total = batch_ * per_group + shared;
    T* p = thread_tile_memory<T>(total);
    std::fill_n(p, total, T(0));
    for (int i = 0; i < N; ++i) {
      set_[i] = TileSet<T>{p, shapes[i].ld, shapes[i].rows * shapes[i].ld};
      p += (shapes[i].batched ? batch_ : 1) * set_[i].size;
    }
  }
  Tiles(const Tiles&) = delete;
  Tiles& operator=(const Tiles&) = delete;
  const TileSet<T>& operator[](int i) const { return set_[i]; }
  int64_t batch() const { return batch_; }

 private:
  TileSet<T> set_[N];
  int64_t batch_;
};

}  // namespace ASID_CPU_ISA
}  // namespace cpu
}  // namespace asid
