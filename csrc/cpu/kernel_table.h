// The CPU kernels as seen by the op wrappers: one table of functions per instruction set
// (baseline x86-64 / AVX2+FMA), chosen once at run time from the CPU's features.
//
// Each worker thread calls a kernel once with the op's arguments (see common/op_args.h) and a
// shared WorkQueue; the kernel takes its scratch tiles (tile_io.h: memory kept by the thread
// between calls), then takes parts of the group range until none is left (dynamic balancing: a
// worker slowed down by other load takes fewer parts; tile_io.h's for_each_batch takes the next
// part when the last batch of the current one starts). The reduced gradients
// (WindowBwdArgs::dbias, ChannelBwdArgs::dtemperature) point at one zeroed partial per part, which
// the kernel ADDS into; the wrapper sums the partials in part order (parallel_parts.h:
// PartialSums), so results do not depend on the thread count or the schedule.
#pragma once

#include <atomic>
#include <string>

#include "../common/op_args.h"

namespace asid {
namespace cpu {

// [0, total) in `parts` contiguous parts, handed out one at a time.
class WorkQueue {
 public:
  static constexpr int64_t kMaxParts = 64;
  static int64_t parts_for(int64_t total) { return total < kMaxParts ? total : kMaxParts; }
  explicit WorkQueue(int64_t total) : total_(total), parts_(parts_for(total)) {}
  int64_t parts() const { return parts_; }
  // Claims the next part: its index and group range; false when all are taken.
  bool take(int64_t* part, int64_t* begin, int64_t* end) {
    const int64_t p = next_.fetch_add(1);
    if (p >= parts_) return false;
    *part = p;
    *begin = total_ * p / parts_;
    *end = total_ * (p + 1) / parts_;
    return true;
  }

 private:
  const int64_t total_, parts_;
  std::atomic<int64_t> next_{0};
};

template <typename T>
struct KernelTable {
  void (*window_forward)(const WindowFwdArgs<T>&, WorkQueue&);
  void (*window_backward)(const WindowBwdArgs<T>&, WorkQueue&);
  void (*shared_forward)(const SharedFwdArgs<T>&, WorkQueue&);
  void (*shared_backward)(const SharedBwdArgs<T>&, WorkQueue&);
  void (*channel_forward)(const ChannelFwdArgs<T>&, WorkQueue&);
  void (*channel_backward)(const ChannelBwdArgs<T>&, WorkQueue&);
};

// Tables of one instruction set (defined in kernels_<isa>.cpp; avx2 returns null where the
// compiler cannot target it).
namespace baseline {
template <typename T>
const KernelTable<T>* kernel_table();
}
namespace avx2 {
template <typename T>
const KernelTable<T>* kernel_table();
}

// The table in use (AVX2+FMA when both the build and the CPU support it, else baseline).
template <typename T>
const KernelTable<T>& kernels();

// Name of the instruction set in use: "avx2" or "baseline".
std::string active_isa();
// Force "baseline", "avx2" (error if unsupported) or "auto"; returns the active set.
std::string set_isa(const std::string& name);

}  // namespace cpu
}  // namespace asid
