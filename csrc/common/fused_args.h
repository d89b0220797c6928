// Arguments of the model-level fused kernels (LayerNorm over channels, depthwise 3x3 conv with an
// epilogue), torch-free (shared by the C++ and CUDA kernels).
//
// Maps are channels-last (B, H, W, C) with a unit channel stride; inputs are read through their
// strides (MapView), outputs and gradient buffers are contiguous. Per-channel parameter arrays
// (weights, taps, biases) and the per-worker gradient buffers have rows of `ld` >= C elements,
// zero padded (the CPU kernels pad to whole SIMD vectors; CUDA uses ld = C). T is the storage
// type, S the accumulation type (float for half-precision maps on CUDA, else T).
#pragma once

#include "group_layout.h"

namespace asid {

// Rows of a (B, H, W, C) map: row r = (b, h, w) in row-major order.
struct RowGrid {
  int64_t batch = 0, height = 0, width = 0, channels = 0;
  ASID_HD int64_t rows() const { return batch * height * width; }
  template <typename T>
  ASID_HD T* row(const MapView<T>& m, int64_t r) const {
    const int64_t w = r % width, bh = r / width;
    return m.data + (bh / height) * m.sb + (bh % height) * m.sh + w * m.sw;
  }
};

// y = (x - mean) * rstd * weight + bias per row; mean, rstd (rows) saved for backward.
template <typename T, typename S = T>
struct LayerNormFwdArgs {
  RowGrid grid;
  int64_t ld = 0;
  MapView<const T> x;
  const T* weight = nullptr;
  const T* bias = nullptr;
  double eps = 1e-5;
  T* y = nullptr;
  S* mean = nullptr;
  S* rstd = nullptr;
};

// dx per row; dweight, dbias (channels) are ADDED into the given (per-worker) buffers.
template <typename T, typename S = T>
struct LayerNormBwdArgs {
  RowGrid grid;
  int64_t ld = 0;
  MapView<const T> x;
  const T* grad_y = nullptr;
  const T* weight = nullptr;
  const S* mean = nullptr;
  const S* rstd = nullptr;
  T* dx = nullptr;
  S* dweight = nullptr;
  S* dbias = nullptr;
};

// What follows the depthwise convolution: nothing, GELU, or GELU(first half) * second half.
enum class Epilogue : int { kNone = 0, kGelu = 1, kGate = 2 };

// Depthwise 3x3 conv, zero padding 1: pre[c] = bias[c] + sum_t x[pixel + offset(t), c] taps[t][c]
// with taps (9, ld) tap-major (t = 3 dy + dx), then the epilogue into out (B, H, W, C or C/2).
template <typename T>
struct DwconvFwdArgs {
  RowGrid grid;  // channels = C of x
  int64_t ld = 0;
  MapView<const T> x;
  const T* taps = nullptr;
  const T* bias = nullptr;  // (C) or null
  Epilogue epilogue = Epilogue::kNone;
  T* out = nullptr;
};

// Backward: grad_pre = d(epilogue)/d(pre) * grad_out (recomputing pre), then
// dx = conv(grad_pre, flipped taps) and dtaps, dbias (ADDED into per-worker buffers). The CPU
// kernel makes grad_pre row by row (grad_pre unused); the CUDA kernels write it to a map first.
template <typename T, typename S = T>
struct DwconvBwdArgs {
  DwconvFwdArgs<T> fwd;       // x, taps, bias, epilogue of the forward (out unused)
  const T* grad_out = nullptr;  // contiguous (B, H, W, C or C/2)
  T* grad_pre = nullptr;        // CUDA: contiguous (B, H, W, C); equals grad_out for kNone
  const T* flipped_taps = nullptr;  // taps[8 - t], (9, ld)
  T* dx = nullptr;
  S* dtaps = nullptr;  // (9, ld)
  S* dbias = nullptr;  // (ld)
};

}  // namespace asid

namespace asid {

// A row-streamed chain of per-pixel and 3x3 depthwise convolutions on a channels-last map x
// (B, H, W, K):
//   a   = LayerNorm(x) if norm_weight else x                      (K channels)
//   p   = a W_in^T (+ b_in) (then GELU if gelu_in)                 (n_in channels)
//   m   = epilogue(dwconv3x3(p, taps) (+ b_dw)), or p without taps (n_mid = n_in or n_in / 2)
//   out = x + m W_out^T if w_out else m                            (K or n_mid channels)
// Matrices are stored transposed and padded: w_in (K, ld_in) holds W_in^T, taps (9, ld_in),
// w_out (n_mid, ld_out) holds W_out^T; ld_in, ld_out are multiples of 8, zero padded.
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

}  // namespace asid

namespace asid {

// out = residual + [x_0 | x_1 | ...] W^T + bias on channels-last maps: the inputs (up to
// kMaxLinearInputs, widths k_i, read through their strides) are concatenated along channels;
// W^T is stored (K, ld_n), ld_n >= N a multiple of 8, zero padded, one per image when
// w_image_stride != 0. bias (ld_n) and residual (B, H, W, N) are optional; out is contiguous.
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
  T* out = nullptr;
};

}  // namespace asid
