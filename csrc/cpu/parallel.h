// Running a CPU kernel on the intra-op threads over one WorkQueue (work_queue.h), and the
// per-part partial sums of reduced gradients.
#pragma once

#include <ATen/Parallel.h>

#include <algorithm>
#include <vector>

#include "cpu/work_queue.h"

namespace asid {
namespace cpu {

// Parts for ops whose results must not depend on the thread count: a function of `total` only.
inline int64_t fixed_parts(int64_t total, int64_t max_parts = 64) {
  return std::max<int64_t>(1, std::min(total, max_parts));
}

// Parts for forward ops without reductions: a few per thread (balance on a busy machine), each
// at least `min_size` long.
inline int64_t balanced_parts(int64_t total, int64_t min_size, int64_t per_thread = 4) {
  const int64_t by_size = std::max<int64_t>(1, total / std::max<int64_t>(min_size, 1));
  return std::max<int64_t>(1, std::min(by_size, per_thread * at::get_num_threads()));
}

// kernel(args, queue) on min(threads, parts) worker threads over [0, total) in `parts` parts.
template <typename Args>
void run_kernel(void (*kernel)(const Args&, WorkQueue&), const Args& args, int64_t total,
                int64_t parts) {
  if (total <= 0) return;
  WorkQueue queue(total, parts, at::get_num_threads());
  at::parallel_for(0, queue.workers(), 1,
                   [&](int64_t first, int64_t last) {
                     for (int64_t w = first; w < last; ++w) kernel(args, queue);
                   });
}

// The per-part partial sums of a reduced gradient: `parts` zeroed rows of `size` elements, kept
// by the calling thread between calls (a fresh allocation page-faults on every call), then summed
// in part order.
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
  T* part(int64_t p) const { return data_ + p * size_; }
  // out[i] = the sum of the parts' element i, parts in order.
  void sum_into(T* out) const {
    at::parallel_for(0, size_, 1024, [&](int64_t begin, int64_t end) {
      std::copy(data_ + begin, data_ + end, out + begin);
      for (int64_t p = 1; p < parts_; ++p) {
        const T* row = data_ + p * size_;
        for (int64_t i = begin; i < end; ++i) out[i] += row[i];
      }
    });
  }

 private:
  int64_t parts_, size_;
  T* data_;
};

}  // namespace cpu
}  // namespace asid
