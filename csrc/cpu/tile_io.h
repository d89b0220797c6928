// Moving pixel groups between channels-last maps and contiguous scratch tiles.
// Included only by cpu/kernels_impl.h (per-ISA namespace, see tile_math.h).
//
// Kernels work on batches of consecutive groups: their pixels are gathered member by member across
// the batch, because consecutive groups usually sit side by side in the map (adjacent pixels for
// "global" windows and "cell" groups, adjacent 8-pixel runs for "meso" windows), which turns
// scattered single-pixel reads into long sequential runs. Kernels that prefetch (line_prefetch.h)
// take smaller batches and fetch the pixels of their next batch and the outputs of this one while
// the products run (BatchPixelPrefetch).
#pragma once

#include <algorithm>
#include <vector>

#include "../common/group_layout.h"
#include "kernel_table.h"
#include "tile_math.h"

namespace asid {
namespace cpu {
namespace ASID_CPU_ISA {

constexpr int64_t kMaxBatch = 8;

// Tile budgets (bytes of batched tiles) that set the batch size: ~half of a 512 KiB L2 for kernels
// that gather straight from memory; 64 KiB for kernels that prefetch the next batch's pixels and
// this batch's outputs (BatchPixelPrefetch), which need room in L2 for them (measured with the
// prefetch, window kernels, d = 36 and 24: 64 KiB batches 1-3.5% faster than 128 KiB ones, as
// fast as 32 KiB ones).
constexpr int64_t kTileBudget = int64_t(256) << 10;
constexpr int64_t kPrefetchingTileBudget = int64_t(64) << 10;

// Groups per batch: as many as fit the budget, between 1 and kMaxBatch.
inline int64_t batch_size(int64_t tile_bytes_per_group, int64_t budget) {
  const int64_t fit = budget / (tile_bytes_per_group > 0 ? tile_bytes_per_group : 1);
  return fit < 1 ? 1 : (fit > kMaxBatch ? kMaxBatch : fit);
}

// Groups [begin, begin + count) of a part, and the groups the same thread takes next:
// [next_begin, next_begin + next_count) (next_count 0 when none is left).
struct Batch {
  int64_t part, begin, count, next_begin, next_count;
  // The group after group g of this batch, or -1.
  int64_t after(int64_t g) const {
    return g + 1 < begin + count ? g + 1 : (next_count > 0 ? next_begin : -1);
  }
};

// Calls fn(Batch) for each batch of each part taken from the queue. The next part is taken when
// the last batch of a part starts, so that batch knows what follows it (see BatchPixelPrefetch).
template <typename F>
inline void for_each_batch(WorkQueue& queue, int64_t batch, const F& fn) {
  const auto clip = [batch](int64_t left) { return left < batch ? left : batch; };
  int64_t part, begin, end;
  bool taken = queue.take(&part, &begin, &end);
  while (taken) {
    int64_t next_part = 0, next_begin = 0, next_end = 0;
    bool next_taken = false;
    for (int64_t g0 = begin; g0 < end; g0 += batch) {
      const int64_t count = clip(end - g0);
      Batch b{part, g0, count, g0 + count, clip(end - g0 - count)};
      if (b.next_count == 0 && (next_taken = queue.take(&next_part, &next_begin, &next_end))) {
        b.next_begin = next_begin;
        b.next_count = clip(next_end - next_begin);
      }
      fn(b);
    }
    taken = next_taken;
    part = next_part;
    begin = next_begin;
    end = next_end;
  }
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
// are skipped). Tile rows are padded to whole vectors (rows.ld and cols.ld multiples of 8), and
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

// In-register transpose of a lanes x lanes block: afterwards r[j][i] is the former r[i][j].
ASID_VEC_INLINE void transpose_block(f32x8 (&r)[8]) {
  f32x8 t[8], u[8];
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
ASID_VEC_INLINE void transpose_block(f64x4 (&r)[4]) {
  const f64x4 t0 = __builtin_shufflevector(r[0], r[1], 0, 4, 2, 6);
  const f64x4 t1 = __builtin_shufflevector(r[0], r[1], 1, 5, 3, 7);
  const f64x4 t2 = __builtin_shufflevector(r[2], r[3], 0, 4, 2, 6);
  const f64x4 t3 = __builtin_shufflevector(r[2], r[3], 1, 5, 3, 7);
  r[0] = __builtin_shufflevector(t0, t2, 0, 1, 4, 5);
  r[1] = __builtin_shufflevector(t1, t3, 0, 1, 4, 5);
  r[2] = __builtin_shufflevector(t0, t2, 2, 3, 6, 7);
  r[3] = __builtin_shufflevector(t1, t3, 2, 3, 6, 7);
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

// The memory of channels [0, d) of the pixels of groups [g0, g0 + count) in some maps, as byte
// runs for a RunFetcher (line_prefetch.h) in the gather's address order, written to runs (room
// for N * count * group_size); returns their number. Maps that are adjacent channel ranges of one
// tensor (q, k and v split from one projection) count as one, and a pixel or row of pixels that
// continues the previous run extends it (few runs: little work here and in the fetcher).
template <typename P, int N>
inline int64_t pixel_runs(const GroupLayout& l, int64_t g0, int64_t count, int64_t d,
                          const MapView<P>* const (&maps)[N], ByteRun* runs) {
  int64_t size = 0;
  const auto add = [&](const char* begin, const char* end) {
    if (size > 0 && begin == runs[size - 1].end)
      runs[size - 1].end = end;
    else
      runs[size++] = ByteRun{begin, end};
  };
  for (int i = 0; i < N && count > 0;) {
    int j = i + 1;  // maps [i, j) are adjacent channel ranges of one tensor
    while (j < N && maps[j]->data == maps[j - 1]->data + d && maps[j]->sb == maps[i]->sb &&
           maps[j]->sh == maps[i]->sh && maps[j]->sw == maps[i]->sw)
      ++j;
    const int64_t bytes = (j - i) * d * int64_t(sizeof(P));
    const BatchPixels<P> pixels(*maps[i], l, g0, count);
    const auto at = [&](int64_t t, int64_t mi, int64_t mj) {
      return reinterpret_cast<const char*>(pixels.at(t, mi, mj));
    };
    const bool rows_contiguous = pixels.step_w * int64_t(sizeof(P)) == bytes;
    // address order, as in for_each_member: member rows of each group, or groups side by side
    const bool members_inner = l.member_step_w <= l.group_step_w;
    for (int64_t mi = 0; mi < l.members_h; ++mi)
      for (int64_t outer = 0; outer < (members_inner ? count : l.members_w); ++outer) {
        if (members_inner && rows_contiguous) {
          add(at(outer, mi, 0), at(outer, mi, 0) + l.members_w * bytes);
          continue;
        }
        for (int64_t inner = 0; inner < (members_inner ? l.members_w : count); ++inner) {
          const char* px = members_inner ? at(outer, mi, inner) : at(inner, mi, outer);
          add(px, px + bytes);
        }
      }
    i = j;
  }
  return size;
}

// Prefetch, during each batch, of the pixels that the thread's next batch gathers and of those
// that this batch scatters (LinePrefetcher::next_batch and batch_outputs): start() after the
// batch's gather. The maps are the kernel's gather and scatter maps.
template <typename T, int NI, int NO>
class BatchPixelPrefetch {
 public:
  BatchPixelPrefetch(const GroupLayout& l, int64_t d, const MapView<const T>* const (&inputs)[NI],
                     const MapView<T>* const (&outputs)[NO])
      : l_(l), d_(d), inputs_(inputs), outputs_(outputs),
        runs_((NI + NO) * kMaxBatch * l.group_size()) {}
  void start(const Batch& batch, LinePrefetcher& pf) {
    ByteRun* in = runs_.data();
    ByteRun* out = in + NI * kMaxBatch * l_.group_size();
    pf.next_batch.set(in, pixel_runs(l_, batch.next_begin, batch.next_count, d_, inputs_, in));
    pf.batch_outputs.set(out, pixel_runs(l_, batch.begin, batch.count, d_, outputs_, out));
  }

 private:
  const GroupLayout& l_;
  const int64_t d_;
  const MapView<const T>* const (&inputs_)[NI];
  const MapView<T>* const (&outputs_)[NO];
  std::vector<ByteRun> runs_;
};

// The n x n matrices (nn elements each) of the group after g (Batch::after) in the arrays m,
// null arrays skipped, as runs for LinePrefetcher::next_window (the backward's products read them
// in column strips); returns their number: 0 after the thread's last group.
template <typename T, int N>
inline int64_t next_group_matrices(const Batch& batch, int64_t g, int64_t nn,
                                   const T* const (&m)[N], ByteRun (&runs)[N]) {
  const int64_t after = batch.after(g);
  int64_t count = 0;
  for (int i = 0; i < N && after >= 0; ++i)
    if (m[i]) runs[count++] = byte_run(m[i] + after * nn, nn);
  return count;
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
// again on the next call (measured: ~60 faults per call and thread).
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

constexpr int64_t pad8(int64_t x) { return (x + 7) / 8 * 8; }

}  // namespace ASID_CPU_ISA
}  // namespace cpu
}  // namespace asid
