// Running CPU kernels on the intra-op threads: a static split into one part per thread
// (for_each_part) or the dynamic WorkQueue of kernel_table.h (run_kernel).
#pragma once

#include <ATen/Parallel.h>

#include <algorithm>
#include <vector>

#include "kernel_table.h"

namespace asid {
namespace cpu {

// Number of parts for `total` groups: one per thread, at most one per group.
inline int64_t num_parts(int64_t total) {
  return std::max<int64_t>(1, std::min<int64_t>(at::get_num_threads(), total));
}

// Runs fn(part, begin, end) in parallel over the num_parts(total) equal parts of [0, total). The
// split depends only on the thread count, so per-part partial sums reduce deterministically.
template <typename F>
void for_each_part(int64_t total, const F& fn) {
  const int64_t parts = num_parts(total);
  at::parallel_for(0, parts, 1, [&](int64_t first, int64_t last) {
    for (int64_t p = first; p < last; ++p) fn(p, total * p / parts, total * (p + 1) / parts);
  });
}

// Runs kernel(args, queue) on every worker thread over one WorkQueue of `total` groups (see
// kernel_table.h; per-part partial sums: WorkQueue::parts_for(total) of them).
template <typename Args>
void run_kernel(void (*kernel)(const Args&, WorkQueue&), const Args& args, int64_t total) {
  WorkQueue queue(total);
  at::parallel_for(0, std::min<int64_t>(at::get_num_threads(), queue.parts()), 1,
                   [&](int64_t first, int64_t last) {
                     for (int64_t w = first; w < last; ++w) kernel(args, queue);
                   });
}

// The per-part partial sums of a reduced gradient (see kernel_table.h): `parts` zeroed rows of
// `size` elements, kept by the calling thread between calls (a fresh allocation would page-fault
// on every call), then summed in part order.
template <typename T>
class PartialSums {
 public:
  PartialSums(int64_t parts, int64_t size) : parts_(parts), size_(size) {
    thread_local std::vector<T> memory;
    if (int64_t(memory.size()) < parts * size) memory.resize(parts * size);
    data_ = memory.data();
    std::fill_n(data_, parts * size, T(0));
  }
  PartialSums(const PartialSums&) = delete;
  PartialSums& operator=(const PartialSums&) = delete;
  T* data() const { return data_; }
  // out[i] = sum of the parts' element i, parts in order (the same sum whatever the thread count).
  void sum_into(T* out) const {
    at::parallel_for(0, size_, 1024, [&](int64_t begin, int64_t end) {
      std::copy(data_ + begin, data_ + end, out + begin);
      for (int64_t p = 1; p < parts_; ++p) {
        const T* part = data_ + p * size_;
        for (int64_t i = begin; i < end; ++i) out[i] += part[i];
      }
    });
  }

 private:
  int64_t parts_, size_;
  T* data_;
};

}  // namespace cpu
}  // namespace asid
