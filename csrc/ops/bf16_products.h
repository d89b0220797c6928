// Whether an op's float32 products run in bf16 on the CPU (cpu/bf16_products.h), and its
// weights packed for them.
#pragma once

#include <ATen/core/Tensor.h>

namespace asid {

// x is a float32 CPU tensor, torch allows bf16 for float32 matmuls on the CPU
// (torch.backends.mkldnn.matmul.fp32_precision = "bf16", or torch.backends.mkldnn.fp32_precision
// while the matmul setting is "none") and the kernels in use have bf16 products
// (cpu::bf16_products_supported).
bool bf16_products(const at::Tensor& x);

// B (..., K, ld) float -> (..., ceil(K / 2), ld) int32 words, word (j, n) = the bf16 values of
// rows 2j and 2j + 1 at column n (lower half first; a zero row pads an odd K).
at::Tensor bf16_pairs(const at::Tensor& b);

}  // namespace asid
