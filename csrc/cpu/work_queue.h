// The one way the CPU kernels share work between threads, torch-free. An op splits its range
// [0, total) (windows, pixel groups, pixel rows or image rows) into `parts` contiguous parts;
// every worker thread runs the kernel once with the op's arguments and the shared queue, and the
// kernel takes parts until none is left (a worker slowed down by other load takes fewer).
// Reduced gradients (dbias, dtemperature, LayerNorm's dweight, the depthwise taps) are summed
// into one partial per part, which the op adds up in part order afterwards (parallel.h:
// PartialSums): ops with such sums choose `parts` from `total` alone, so their results do not
// depend on the thread count or the schedule.
#pragma once

#include <atomic>
#include <cstdint>

namespace asid {
namespace cpu {

class WorkQueue {
 public:
  WorkQueue(int64_t total, int64_t parts)
      : total_(total), parts_(parts < 1 ? 1 : (parts > total ? total : parts)) {}
  int64_t parts() const { return parts_; }
  // Claims the next part: its index and range; false when all are taken.
  bool take(int64_t* part, int64_t* begin, int64_t* end) {
    const int64_t p = next_.fetch_add(1);
    if (p >= parts_) return false;
    *part = p;
    *begin = total_ * p / parts_;
    *end = total_ * (p + 1) / parts_;
    return true;
  }
  // Calls fn(part, begin, end) for each part this worker takes.
  template <typename F>
  void for_each_part(const F& fn) {
    int64_t part, begin, end;
    while (take(&part, &begin, &end)) fn(part, begin, end);
  }

 private:
  const int64_t total_, parts_;
  std::atomic<int64_t> next_{0};
};

}  // namespace cpu
}  // namespace asid
