// Argument checks and tensor plumbing shared by the ops' entries (csrc/ops/*.cpp), for every
// device. The Python API validates inputs first (asid_fast/ops/_checks.py); these checks guard
// direct calls of torch.ops.asid_fast.* with clear errors.
#pragma once

#include <ATen/core/Tensor.h>

#include <optional>
#include <string>
#include <vector>

#include "common/layout.h"
#include "ops/depthwise_conv3x3.h"

namespace asid {

// A (B, H, W, d) map with H, W multiples of window and a unit channel stride.
void check_map(const char* name, const at::Tensor& t, int64_t window);
// Same shape (when `shape`), device and dtype as the reference tensor.
void check_like(const char* name, const at::Tensor& t, const char* ref_name, const at::Tensor& ref,
                bool shape = true);
// A (n) vector with the device and dtype of the map x.
void check_vector(const char* name, const at::Tensor& t, int64_t n, const at::Tensor& x);
// A contiguous-able matrix stack of the given shape, same device and dtype as ref.
void check_matrix(const char* name, const at::Tensor& t, at::IntArrayRef shape,
                  const at::Tensor& ref);

// "meso" -> false, "global" -> true (error otherwise); layout of a (B, H, W, d) map.
GroupLayout window_layout(const std::string& mode, const at::Tensor& map, int64_t window);
// "window" -> false, "cell" -> true (error otherwise).
GroupLayout channel_layout(const std::string& mode, const at::Tensor& map, int64_t window);

// Full argument checks of the window and channel attention ops (schemas: asid_fast/ops/*.py); each
// returns the op's pixel grouping.
GroupLayout check_window_attention_fwd(const at::Tensor& q, const at::Tensor& k,
                                       const at::Tensor& v, const at::Tensor& bias,
                                       const std::string& mode, int64_t window);
GroupLayout check_window_attention_bwd(const at::Tensor& grad_out, const at::Tensor& grad_attn,
                                       const at::Tensor& q, const at::Tensor& k,
                                       const at::Tensor& v, const at::Tensor& attn,
                                       const at::Tensor& bias, const std::string& mode,
                                       int64_t window);
GroupLayout check_shared_window_attention(const at::Tensor& attn, const at::Tensor& v,
                                          const at::Tensor& grad_out, const std::string& mode,
                                          int64_t window);
GroupLayout check_channel_attention_fwd(const at::Tensor& q, const at::Tensor& k,
                                        const at::Tensor& v, const at::Tensor& temperature,
                                        const std::string& mode, int64_t window);
GroupLayout check_channel_attention_bwd(const at::Tensor& grad_out, const at::Tensor& q,
                                        const at::Tensor& k, const at::Tensor& v,
                                        const at::Tensor& temperature, const at::Tensor& attn,
                                        const at::Tensor& rq, const at::Tensor& rk,
                                        const std::string& mode, int64_t window);

// The dtype of channel attention's saved statistics (attn, rq, rk): float for half precision.
at::ScalarType channel_stats_dtype(at::ScalarType map_dtype);

// A MapView of a checked map (data pointer cast to T, which must match the tensor's element size).
template <typename T>
MapView<T> map_view(const at::Tensor& t) {
  MapView<T> m;
  m.data = static_cast<T*>(t.data_ptr());
  m.sb = t.stride(0);
  m.sh = t.stride(1);
  m.sw = t.stride(2);
  return m;
}

template <typename T>
T* data_or_null(const at::Tensor& t) {
  return t.defined() ? static_cast<T*>(t.data_ptr()) : nullptr;
}

// Whether an optional tensor argument was given (present and defined).
inline bool given(const std::optional<at::Tensor>& t) {
  return t.has_value() && t->defined();
}

// The contiguous tensor of an optional argument, or an undefined tensor.
at::Tensor contiguous_or_undefined(const std::optional<at::Tensor>& t);

// The rows of a (B, H, W, C) map.
RowGrid row_grid(const at::Tensor& x);

// "none" / "gelu" / "gate" (error otherwise; "gate" needs an even channel count).
Epilogue parse_epilogue(const std::string& name, int64_t channels);
int64_t epilogue_channels(Epilogue e, int64_t channels);

RowGrid check_layer_norm_fwd(const at::Tensor& x, const at::Tensor& weight,
                             const at::Tensor& bias);
RowGrid check_layer_norm_bwd(const at::Tensor& grad_y, const at::Tensor& x,
                             const at::Tensor& weight, const at::Tensor& mean,
                             const at::Tensor& rstd, at::ScalarType stats_dtype);
// grad_out: undefined for the forward.
RowGrid check_dwconv(const at::Tensor& x, const at::Tensor& weight,
                     const std::optional<at::Tensor>& bias, Epilogue e,
                     const at::Tensor& grad_out);

// The convolution chain (ConvChainArgs): x (B, H, W, K); norm weight and bias both (K) or both
// absent; w_in (n_in, K); b_in, b_dw (n_in) or absent; w_dw (n_in, 1, 3, 3); w_out (K, n_mid)
// or absent; without w_dw (no depthwise conv) the epilogue is "none" and b_dw absent. Returns
// x's rows.
RowGrid check_conv_chain(const at::Tensor& x, const std::optional<at::Tensor>& norm_weight,
                         const std::optional<at::Tensor>& norm_bias, const at::Tensor& w_in,
                         const std::optional<at::Tensor>& b_in,
                         const std::optional<at::Tensor>& w_dw,
                         const std::optional<at::Tensor>& b_dw, Epilogue e,
                         const std::optional<at::Tensor>& w_out);

// The linear map (LinearArgs): 1..4 maps of one (B, H, W) grid, weight (N, K) or
// (B, N, K) with K the sum of their widths, bias (N) or absent, residual and gate (B, H, W, N) or
// absent. Returns the output's rows (channels = N).
RowGrid check_linear(const std::vector<at::Tensor>& xs, const at::Tensor& weight,
                     const std::optional<at::Tensor>& bias,
                     const std::optional<at::Tensor>& residual,
                     const std::optional<at::Tensor>& gate);

// Rows of the CPU kernels' parameter arrays: C rounded up to 16 elements, whole vectors of every
// instruction set's kernels (cpu/tile_io.h: pad_lanes).
inline int64_t padded(int64_t c) { return (c + 15) / 16 * 16; }
// A contiguous zero-padded copy of a parameter: t (rows, C) -> (rows, ld), or of its transpose
// (transposed: t (C, rows)); a 3-D t is a stack of them, (B, rows, ld); a vector is one row. With
// blocks > 1, the C columns form that many equal groups, each zero padded to ld on its own:
// (rows, blocks * ld).
at::Tensor padded_rows(const at::Tensor& t, int64_t ld, bool transposed = false,
                       int64_t blocks = 1);
// A zero-padded (1, ld) contiguous copy of an optional (n) vector, or an undefined tensor.
at::Tensor padded_vector(const std::optional<at::Tensor>& t, int64_t ld);
// The (C, 1, 3, 3) weight as tap-major (9, ld) taps (t = 3 dy + dx), or flipped (t -> 8 - t).
at::Tensor dwconv_taps(const at::Tensor& weight, bool flipped, int64_t ld);

}  // namespace asid
