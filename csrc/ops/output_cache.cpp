// The CPU output cache (output_cache.h): a c10::Allocator that keeps freed blocks by exact size.
// A request takes the most recently freed block of its size (likeliest still in the CPU caches);
// when the cache is over its limit, the least recently freed blocks go back to the system.
#include "ops/output_cache.h"

#include <ATen/EmptyTensor.h>
#include <ATen/ops/empty.h>
#include <c10/core/Allocator.h>
#include <c10/core/impl/alloc_cpu.h>

#include <deque>
#include <list>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace asid {
namespace {

constexpr int64_t kDefaultLimit = int64_t{1} << 30;

struct Block {
  void* data;
  size_t bytes;
};

class OutputCache final : public c10::Allocator {
 public:
  static OutputCache& instance() {
    static auto* cache = new OutputCache;  // never destroyed: tensors may outlive static teardown
    return *cache;
  }

  c10::DataPtr allocate(size_t bytes) override {
    Block* b = take(bytes);
    if (b == nullptr) b = new Block{bytes ? c10::alloc_cpu(bytes) : nullptr, bytes};
    report(b, static_cast<int64_t>(bytes));
    return {b->data, b, &release, c10::Device(c10::kCPU)};
  }

  void copy_data(void* dest, const void* src, size_t count) const override {
    default_copy_data(dest, src, count);
  }

  int64_t bytes() {
    std::lock_guard<std::mutex> lock(mutex_);
    return cached_;
  }

  int64_t limit() {
    std::lock_guard<std::mutex> lock(mutex_);
    return limit_;
  }

  void set_limit(int64_t limit) {
    std::vector<Block*> dropped;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      limit_ = limit;
      shrink(&dropped);
    }
    free_blocks(dropped);
  }

 private:
  using Lru = std::list<Block*>;  // freed blocks, least recently freed first

  static void release(void* ctx) {
    Block* b = static_cast<Block*>(ctx);
    instance().report(b, -static_cast<int64_t>(b->bytes));
    instance().put(b);
  }

  // Tells torch.profiler (profile_memory=True) of an allocation (+bytes) or a free (-bytes), as
  // torch's own CPU allocator does, so memory profiles and peaks include the ops' outputs.
  void report(const Block* b, int64_t delta) {
    int64_t live, cached;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      live_ += delta;
      live = live_;
      cached = cached_;
    }
    if (b->bytes > 0)
      c10::reportMemoryUsageToProfiler(b->data, delta, live, live + cached, c10::Device(c10::kCPU));
  }

  Block* take(size_t bytes) {
    std::lock_guard<std::mutex> lock(mutex_);
    const auto it = by_size_.find(bytes);
    if (it == by_size_.end()) return nullptr;
    const Lru::iterator newest = it->second.back();
    it->second.pop_back();
    if (it->second.empty()) by_size_.erase(it);
    Block* b = *newest;
    lru_.erase(newest);
    cached_ -= static_cast<int64_t>(bytes);
    return b;
  }

  void put(Block* b) {
    std::vector<Block*> dropped{b};
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (b->bytes > 0 && static_cast<int64_t>(b->bytes) <= limit_) {
        dropped.clear();
        lru_.push_back(b);
        by_size_[b->bytes].push_back(std::prev(lru_.end()));
        cached_ += static_cast<int64_t>(b->bytes);
        shrink(&dropped);
      }
    }
    free_blocks(dropped);
  }

  // Moves the least recently freed blocks to `dropped` until the cache is within its limit.
  void shrink(std::vector<Block*>* dropped) {
    while (cached_ > limit_) {
      Block* old = lru_.front();
      const auto it = by_size_.find(old->bytes);
      it->second.pop_front();  // the oldest of its size is the oldest of all
      if (it->second.empty()) by_size_.erase(it);
      lru_.pop_front();
      cached_ -= static_cast<int64_t>(old->bytes);
      dropped->push_back(old);
    }
  }

  static void free_blocks(const std::vector<Block*>& blocks) {
    for (Block* b : blocks) {
      c10::free_cpu(b->data);
      delete b;
    }
  }

 private:
  std::mutex mutex_;
  Lru lru_;
  std::unordered_map<size_t, std::deque<Lru::iterator>> by_size_;  // oldest first per size
  int64_t cached_ = 0;  // bytes in freed blocks
  int64_t live_ = 0;    // bytes in blocks handed out
  int64_t limit_ = kDefaultLimit;
};

}  // namespace

at::Tensor empty_output(at::IntArrayRef sizes, const at::TensorOptions& options) {
  if (!options.device().is_cpu()) return at::empty(sizes, options);
  return at::detail::empty_generic(sizes, &OutputCache::instance(),
                                   c10::DispatchKeySet(c10::DispatchKey::CPU),
                                   c10::typeMetaToScalarType(options.dtype()), std::nullopt);
}

int64_t output_cache_bytes() { return OutputCache::instance().bytes(); }
int64_t output_cache_limit() { return OutputCache::instance().limit(); }

void set_output_cache_limit(int64_t bytes) {
  TORCH_CHECK(bytes >= 0, "the output cache limit must be >= 0 bytes, got ", bytes);
  OutputCache::instance().set_limit(bytes);
}

void empty_output_cache() {
  OutputCache& cache = OutputCache::instance();
  const int64_t limit = cache.limit();
  cache.set_limit(0);
  cache.set_limit(limit);
}

}  // namespace asid
