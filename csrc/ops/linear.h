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
};

ASID_DECLARE_CPU_KERNEL(linear, LinearArgs)

}  // namespace asid
