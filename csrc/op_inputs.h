// Checks and kernel-argument plumbing shared by the CPU and CUDA registrations of the window
// operators. The Python API validates inputs first (asid_fast/ops/_checks.py); these checks
// guard direct calls of torch.ops.asid_fast.* with clear errors.
#pragma once

#include <ATen/ATen.h>

#include <string>

#include "common/group_layout.h"

namespace asid {

// A (B, H, W, d) map with H, W multiples of window and a unit channel stride.
void check_map(const char* name, const at::Tensor& t, int64_t window);
// Same shape (when `shape`), device and dtype as the reference tensor.
void check_like(const char* name, const at::Tensor& t, const char* ref_name, const at::Tensor& ref,
                bool shape = true);
// A contiguous-able matrix stack of the given shape, same device and dtype as ref.
void check_matrix(const char* name, const at::Tensor& t, at::IntArrayRef shape,
                  const at::Tensor& ref);

// "meso" -> false, "global" -> true (error otherwise); layout of a (B, H, W, d) map.
GroupLayout window_layout(const std::string& mode, const at::Tensor& map, int64_t window);
// "window" -> false, "cell" -> true (error otherwise).
GroupLayout channel_layout(const std::string& mode, const at::Tensor& map, int64_t window);

// Full argument checks of each op (forward and backward schemas of asid_fast/ops/registration.py);
// each returns the op's pixel grouping.
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

// The contiguous tensor of an optional argument, or an undefined tensor.
at::Tensor contiguous_or_undefined(const std::optional<at::Tensor>& t);

}  // namespace asid
