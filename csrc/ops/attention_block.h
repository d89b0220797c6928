// The attention half of an SLA/SGA block as one CPU operator (asid_fast/ops/attention_block.py):
// kernel arguments and the kernel's declaration, torch-free. Maps are channels-last with a unit
// channel stride (common/layout.h); matrices are contiguous. T is the maps' storage type.
#pragma once

#include "common/layout.h"
#include "cpu/isa.h"

namespace asid {

// Per window of x (n tokens, d channels): a = LayerNorm(x); with three projections (q, k, v =
// a W_in^T) attn = softmax(scale q k^T + bias), written to attn_out; with one (v = a W_in^T)
// attn is read from attn_in. out = x + (attn v) W_out^T.
template <typename T>
struct AttentionBlockArgs {
  GroupLayout layout;
  int64_t dim = 0;
  MapView<const T> x;
  const T* norm_weight = nullptr;  // (ld_w) zero padded, as norm_bias
  const T* norm_bias = nullptr;
  double eps = 0.0;
  int projections = 3;  // 3: q, k, v; 1: v only (the shared block)
  const T* w_in = nullptr;  // (d, projections * ld_w): W_q^T | W_k^T | W_v^T, each zero padded
  const T* w_out = nullptr;  // (d, ld_w): W_out^T, zero padded
  int64_t ld_w = 0;
  // w_in and w_out as bf16 pairs (cpu/bf16_products.h; (ceil(d / 2), projections * ld_w) and
  // (ceil(d / 2), ld_w) words) where the products run in bf16, else null
  const uint32_t* w_in_pairs = nullptr;
  const uint32_t* w_out_pairs = nullptr;
  const T* bias = nullptr;  // (n, n) or null
  double scale = 1.0;
  const T* attn_in = nullptr;  // (G, n, n): the shared block's matrices
  T* attn_out = nullptr;  // (G, n, n): the softmax of the block with three projections
  MapView<T> out;
};

ASID_DECLARE_CPU_KERNEL(attention_block_forward, AttentionBlockArgs)

}  // namespace asid
