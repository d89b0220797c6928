// Software prefetch from inside the products: memory that the kernels touch next is brought into
// cache while the current window's products compute, instead of stalling the products, gathers
// and scatters that use it later. Each register block of a product fetches a few lines of each
// list before its inner loop (gemm_block): one line at a time from inside the inner loop cost
// more instructions there (the bursts are 1-5% faster).
//
// Measured on the window kernels (d = 36, 64 x 64 windows): the next window's attention matrix
// and gradient, which the backward's products read in column strips, cost ~2 us per window and
// matrix without it, and one burst of all their lines before the products gained nothing;
// without the next batch's pixels or this batch's outputs (tile_io.h: BatchPixelPrefetch) the
// kernels were 4-10% and 1-3% slower with 2 threads (their gathers and scatters wait on memory).
//
// Included only by cpu/tile_math.h (per-ISA namespace and ASID_VEC_INLINE, see there).
#pragma once

#include <cstdint>

namespace asid {
namespace cpu {
namespace ASID_CPU_ISA {

// Bytes [begin, end).
struct ByteRun {
  const char* begin;
  const char* end;
};

// The memory of x[0, count).
template <typename T>
inline ByteRun byte_run(const T* x, int64_t count) {
  return ByteRun{reinterpret_cast<const char*>(x), reinterpret_cast<const char*>(x + count)};
}

// The cache lines of a list of runs, in order, a given number at a time; Write: prefetch for
// writing (the line arrives owned, so the store that follows does not wait for it).
template <bool Write>
class RunFetcher {
 public:
  // runs[0, count) replace what is left to fetch; the caller keeps them alive.
  void set(const ByteRun* runs, int64_t count) {
    runs_ = runs;
    count_ = count;
    next_run_ = 0;
    line_ = end_ = nullptr;
  }
  void clear() { set(nullptr, 0); }
  ASID_VEC_INLINE void fetch(int lines) {
    for (; lines > 0; --lines) {
      if (line_ >= end_) {
        if (next_run_ == count_) return;
        const ByteRun& r = runs_[next_run_++];
        const uintptr_t first_line = reinterpret_cast<uintptr_t>(r.begin) & ~uintptr_t(63);
        line_ = reinterpret_cast<const char*>(first_line);
        end_ = r.end;
      }
      __builtin_prefetch(line_, Write ? 1 : 0, 3);
      line_ += 64;
    }
  }

 private:
  const ByteRun* runs_ = nullptr;
  int64_t count_ = 0, next_run_ = 0;
  const char *line_ = nullptr, *end_ = nullptr;
};

// Three lists, fetched side by side: fetch(lines) takes up to `lines` lines from each. A product's
// register block with inner dimension K asks for ceil(K / kPrefetchEvery) (measured: 8 beat 4
// and 16).
struct LinePrefetcher {
  static constexpr int kPrefetchEvery = 8;
  RunFetcher<false> next_window;   // read by the next window (attention matrix, its gradient)
  RunFetcher<false> next_batch;    // pixels gathered by the next batch
  RunFetcher<true> batch_outputs;  // pixels scattered at the end of this batch
  ASID_VEC_INLINE void fetch(int lines) {
    next_window.fetch(lines);
    next_batch.fetch(lines);
    batch_outputs.fetch(lines);
  }
};

}  // namespace ASID_CPU_ISA
}  // namespace cpu
}  // namespace asid
