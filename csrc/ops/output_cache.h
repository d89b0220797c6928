// The ops' output tensors. On the CPU they come from a cache of freed blocks: a fresh block from
// the system allocator is mapped page by page on first touch, which costs a page fault per 4 KiB
// (about a tenth of fused inference time), while a model asks for the same sizes at every call.
// Freed blocks are kept, least recently freed dropped first, up to a byte limit (default 1 GiB).
#pragma once

#include <ATen/core/Tensor.h>

namespace asid {

// A contiguous tensor like at::empty(sizes, options); CPU storage comes from the cache (it stays
// resizable: growing it takes a block from the cache too).
at::Tensor empty_output(at::IntArrayRef sizes, const at::TensorOptions& options);

// The CPU cache: bytes held in freed blocks, its limit, dropping every freed block.
int64_t output_cache_bytes();
int64_t output_cache_limit();
void set_output_cache_limit(int64_t bytes);  // drops blocks beyond the new limit
void empty_output_cache();

}  // namespace asid
