// The one way the CPU kernels share work between threads, torch-free. An op splits its range
// [0, total) (windows, pixel groups, pixel rows or image rows) into `parts` contiguous parts;
// every worker thread runs the kernel once with the op's arguments and the shared queue, and the
// kernel takes parts until none is left. The parts are dealt in one contiguous block per worker:
// a worker takes its own block's parts in order, so that a row-streamed kernel finds the rows it
// computed at the end of one part still in its ring at the start of the next (conv_chain's
// projection of the rows around a part), then takes the last untaken parts of the others' blocks
// (a worker slowed down by other load ends up with fewer).
// Reduced gradients (dbias, dtemperature, LayerNorm's dweight, the depthwise taps) are summed
// into one partial per part, which the op adds up in part order afterwards (parallel.h:
// PartialSums): ops with such sums choose `parts` from `total` alone, so their results do not
// depend on the thread count or the schedule.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>

namespace asid {
namespace cpu {

class WorkQueue {
 public:
  // `workers`: how many kernel calls will share the parts (more calls only help the others).
  WorkQueue(int64_t total, int64_t parts, int64_t workers)
      : total_(total),
        parts_(parts < 1 ? 1 : (parts > total ? total : parts)),
        workers_(workers < 1 ? 1 : (workers > parts_ ? parts_ : workers)),
        blocks_(new std::atomic<uint64_t>[workers_]) {
    for (int64_t w = 0; w < workers_; ++w)
      blocks_[w] = pack(parts_ * w / workers_, parts_ * (w + 1) / workers_);
  }
  int64_t parts() const { return parts_; }
  int64_t workers() const { return workers_; }
  // Calls fn(part, begin, end) for each part this worker takes: its own block's parts first.
  template <typename F>
  void for_each_part(const F& fn) {
    const int64_t self = next_worker_.fetch_add(1);
    int64_t part;
    while (take(self, &part)) fn(part, total_ * part / parts_, total_ * (part + 1) / parts_);
  }

 private:
  // A block's untaken parts [front, back) in one word: front in the high half (part indices fit
  // 32 bits: ops cut at most a few dozen parts per thread).
  static uint64_t pack(int64_t front, int64_t back) {
    return (static_cast<uint64_t>(front) << 32) | static_cast<uint64_t>(back);
  }
  // The front part of the block (its owner) or the back one (the others); false when empty.
  static bool claim(std::atomic<uint64_t>& block, bool front, int64_t* part) {
    uint64_t cur = block.load(std::memory_order_relaxed);
    for (;;) {
      const int64_t f = static_cast<int64_t>(cur >> 32);
      const int64_t b = static_cast<int64_t>(cur & 0xffffffffu);
      if (f >= b) return false;
      if (block.compare_exchange_weak(cur, front ? pack(f + 1, b) : pack(f, b - 1))) {
        *part = front ? f : b - 1;
        return true;
      }
    }
  }
  bool take(int64_t self, int64_t* part) {
    if (self < workers_ && claim(blocks_[self], true, part)) return true;
    for (int64_t i = 1; i <= workers_; ++i)
      if (claim(blocks_[(self + i) % workers_], false, part)) return true;
    return false;
  }

  const int64_t total_, parts_, workers_;
  std::unique_ptr<std::atomic<uint64_t>[]> blocks_;
  std::atomic<int64_t> next_worker_{0};
};

}  // namespace cpu
}  // namespace asid
