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
  // w_in and w_out as bf16 pairs (cpu/bf16_products.h; (ceil(K / 2), ld_in) and
  // (ceil(n_mid / 2), ld_out) words) where the products run in bf16, else null
  const uint32_t* w_in_pairs = nullptr;
  const uint32_t* w_out_pairs = nullptr;
};

// Where each parameter's gradient lies in one work part's row of partial sums (element offsets;
// every block padded): LayerNorm weight and bias (ld_k each), dW_in as torch stores W_in
// (n_in, ld_k), b_in (ld_in), the taps (9, ld_in) then b_dw (ld_in), dW_out as torch stores W_out
// (K, ld_mid). Absent parameters keep their blocks (b_in and b_dw get the gradient of a zero bias).
struct ChainGradLayout {
  int64_t norm_weight, norm_bias, w_in, b_in, taps, b_dw, w_out, size;
  ChainGradLayout(int64_t k, int64_t ld_k, int64_t n_in, int64_t ld_in, int64_t ld_mid)
      : norm_weight(0),
        norm_bias(ld_k),
        w_in(2 * ld_k),
        b_in(w_in + n_in * ld_k),
        taps(b_in + ld_in),
        b_dw(taps + 9 * ld_in),
        w_out(b_dw + ld_in),
        size(w_out + k * ld_mid) {}
};

// The chain's backward for grad_out (contiguous, out's shape), recomputing the forward row by row
// from x: dx (contiguous (B, H, W, K); x's gradient, the residual's included) and the parameter
// gradients, which the kernel ADDS into its work part's row of partial sums (ChainGradLayout).
template <typename T>
struct ConvChainBwdArgs {
  ConvChainArgs<T> fwd;  // the forward's arguments (out unused)
  const T* grad_out = nullptr;
  const T* w_in_rows = nullptr;     // W_in (n_in, ld_k), zero padded
  const T* w_out_rows = nullptr;    // W_out (K, ld_mid), zero padded; null without w_out
  const T* flipped_taps = nullptr;  // taps[8 - t] (9, ld_in); null without taps
  int64_t ld_k = 0, ld_mid = 0;
  T* dx = nullptr;
  T* partials = nullptr;  // parts x ChainGradLayout::size
};

ASID_DECLARE_CPU_KERNEL(conv_chain, ConvChainArgs)
ASID_DECLARE_CPU_KERNEL(conv_chain_backward, ConvChainBwdArgs)

}  // namespace asid
