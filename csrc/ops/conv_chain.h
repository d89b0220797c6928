// The row-streamed convolution chain (asid_fast/ops/conv_chain.py): kernel arguments and the CPU
// kernel's declaration, torch-free.
#pragma once

#include "common/layout.h"
#include "cpu/isa.h"
#include "ops/depthwise_conv3x3.h"

namespace asid {

// A chain of per-pixel and 3x3 depthwise convolutions on a channels-last map x (B, H, W, K):
//   a   = LayerNorm(x) if norm_weight else x                      (K channels)
//   p   = a W_in^T (+ b_in) (then GELU if gelu_in)                 (n_in channels)
//   m   = epilogue(dwconv3x3(p, taps) (+ b_dw)), or p without taps (n_mid = n_in or n_in / 2)
//   out = x + m W_out^T if w_out else m                            (K or n_mid channels)
// Matrices are stored transposed and padded: w_in (K, ld_in) holds W_in^T, taps (9, ld_in),
// w_out (n_mid, ld_out) holds W_out^T; ld_in, ld_out are multiples of 16, zero padded. The work
// range is the image rows (B * H).
template <typename T>
struct ConvChainArgs {
  RowGrid grid;  // channels = K
  MapView<const T> x;
  const T* norm_weight = nullptr;  // (K, padded) or null (no LayerNorm)
  const T* norm_bias = nullptr;
  double eps = 1e-6;
  const T* w_in = nullptr;
  int64_t n_in = 0, ld_in = 0;
  const T* b_in = nullptr;  // (ld_in) or null
  bool gelu_in = false;
  const T* taps = nullptr;  // or null: no depthwise conv (m = p)
  const T* b_dw = nullptr;  // (ld_in) or null
  Epilogue epilogue = Epilogue::kNone;
  const T* w_out = nullptr;  // or null: out = m
  int64_t ld_out = 0;
  T* out = nullptr;  // contiguous
};

ASID_DECLARE_CPU_KERNEL(conv_chain, ConvChainArgs)

}  // namespace asid
