// The fused per-pixel linear map (asid_fast/ops/linear.py): kernel arguments and the CPU kernel's
// declaration, torch-free.
#pragma once

#include "common/layout.h"
#include "cpu/isa.h"

namespace asid {

// pre = residual + [x_0 | x_1 | ...] W^T + bias on channels-last maps, out = gate * sigmoid(pre)
// with a gate, else pre: the inputs (up to kMaxLinearInputs, widths k_i, read through their
// strides) are concatenated along channels; W^T is stored (K, ld_n), ld_n >= N a multiple of 16,
// zero padded, one per image when w_image_stride != 0. bias (ld_n), residual and gate
// (B, H, W, N) are optional; out is contiguous. The work range is the image rows (B * H).
constexpr int kMaxLinearInputs = 4;

template <typename T>
struct LinearArgs {
  RowGrid grid;  // the output's rows; channels = N
  int inputs = 0;
  MapView<const T> x[kMaxLinearInputs];
  int64_t k[kMaxLinearInputs] = {};
  const T* w_t = nullptr;
  int64_t ld_n = 0, w_image_stride = 0;
  const T* bias = nullptr;
  MapView<const T> residual;  // data null: none
  MapView<const T> gate;      // data null: none
  T* out = nullptr;
  // where the products run in bf16 (cpu/bf16_products.h), each input's rows of w_t as bf16
  // pairs, stacked ((sum of ceil(k_i / 2), ld_n) words, or per image), else null
  const uint32_t* w_pairs = nullptr;
  int64_t w_pairs_image_stride = 0;
};

// The map's backward for grad (contiguous (B, H, W, N)). The gradient at pre, g, is grad itself
// without a gate; with one, pre is recomputed row by row and d_gate = grad sigmoid(pre),
// g = grad gate sigmoid'(pre) (stored into d_pre, the residual's gradient, when d_pre is given).
// Then dx_i = g W_i (contiguous (B, H, W, k_i)), and the kernel ADDS g^T x_i into its work part's
// row of partial sums (LinearGradLayout) and g's channel sums into the bias block.
template <typename T>
struct LinearBwdArgs {
  LinearArgs<T> fwd;  // the forward's arguments (out unused; w_t and bias given with a gate only)
  const T* grad = nullptr;
  // W as (N, ld_w) rows, or per image (B, N, ld_w): input i's k_i columns start at column
  // w_col[i] (a multiple of 16) and are zero padded to the next multiple of 16
  const T* w_rows = nullptr;
  int64_t w_col[kMaxLinearInputs] = {};
  int64_t ld_w = 0, w_rows_image_stride = 0;
  T* dx[kMaxLinearInputs] = {};
  T* d_pre = nullptr;   // null: not stored
  T* d_gate = nullptr;  // with a gate
  T* partials = nullptr;  // parts x LinearGradLayout::size
};

// Where the gradients lie in one work part's row of partial sums (element offsets): the bias
// (ld_n), then dW in w_rows' layout: (N, ld_w), or (B, N, ld_w) with per-image weights.
struct LinearGradLayout {
  int64_t bias, w, w_image_stride, size;
  LinearGradLayout(int64_t n, int64_t ld_n, int64_t ld_w, int64_t weight_images)
      : bias(0), w(ld_n), w_image_stride(n * ld_w), size(w + weight_images * n * ld_w) {}
};

ASID_DECLARE_CPU_KERNEL(linear, LinearArgs)
ASID_DECLARE_CPU_KERNEL(linear_backward, LinearBwdArgs)

}  // namespace asid
