// Checks and argument plumbing shared by the CPU and CUDA registrations of the fused ops
// (LayerNorm over channels, depthwise 3x3 conv with epilogue). The Python API validates first;
// these guard direct calls of torch.ops.asid_fast.fused_* with clear errors.
#pragma once

#include <ATen/ATen.h>

#include <optional>
#include <string>
#include <vector>

#include "../common/fused_args.h"

namespace asid {

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

// The linear map (LinearArgs): 1..kMaxLinearInputs maps of one (B, H, W) grid, weight (N, K) or
// (B, N, K) with K the sum of their widths, bias (N) or absent, residual (B, H, W, N) or absent.
// Returns the output's rows (channels = N).
RowGrid check_linear(const std::vector<at::Tensor>& xs, const at::Tensor& weight,
                     const std::optional<at::Tensor>& bias,
                     const std::optional<at::Tensor>& residual);

// A contiguous (rows, ld) copy of a (rows, C) parameter tensor, zero padded to ld columns.
at::Tensor padded_rows(const at::Tensor& t, int64_t ld);
// The (C, 1, 3, 3) weight as tap-major (9, ld) taps (t = 3 dy + dx), or flipped (t -> 8 - t).
at::Tensor dwconv_taps(const at::Tensor& weight, bool flipped, int64_t ld);

}  // namespace asid
