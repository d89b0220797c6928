// The op-side half of bf16 products (ops/bf16_products.h).
#include "ops/bf16_products.h"

#include <ATen/Context.h>
#include <ATen/ops/cat.h>
#include <ATen/ops/stack.h>
#include <ATen/ops/zeros.h>

#include "cpu/isa.h"

namespace asid {

bool bf16_products(const at::Tensor& x) {
  if (x.scalar_type() != at::kFloat || !x.device().is_cpu() || !cpu::bf16_products_supported())
    return false;
  auto& ctx = at::globalContext();
  at::Float32Precision p = ctx.float32Precision(at::Float32Backend::MKLDNN, at::Float32Op::MATMUL);
  if (p == at::Float32Precision::NONE)
    p = ctx.float32Precision(at::Float32Backend::MKLDNN, at::Float32Op::ALL);
  return p == at::Float32Precision::BF16;
}

at::Tensor bf16_pairs(const at::Tensor& b) {
  at::Tensor rows = b;
  const int64_t k = b.size(-2), ld = b.size(-1);
  if (k % 2) {
    std::vector<int64_t> pad(b.sizes().begin(), b.sizes().end());
    pad[pad.size() - 2] = 1;
    rows = at::cat({b, at::zeros(pad, b.options())}, -2);
  }
  std::vector<int64_t> split(rows.sizes().begin(), rows.sizes().end() - 2);
  split.insert(split.end(), {(k + 1) / 2, 2, ld});
  const at::Tensor halves = rows.to(at::kBFloat16).reshape(split);  // (..., K2, 2, ld)
  at::Tensor words = at::stack({halves.select(-2, 0), halves.select(-2, 1)}, -1).contiguous();
  split.erase(split.end() - 2);  // (..., K2, ld)
  return words.view(at::kInt).view(split);
}

}  // namespace asid
