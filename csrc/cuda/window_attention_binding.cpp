// CUDA registrations of window_attention_{fwd,bwd} and shared_window_attention_{fwd,bwd}: checks,
// outputs, the current stream; the kernels are in window_attention.cu.
#include <torch/library.h>

#include "../op_args_builders.h"
#include "../op_inputs.h"
#include "binding_utils.h"

namespace asid {
namespace cuda {
namespace {

void check_window_limits(const GroupLayout& l, int64_t d) {
  TORCH_CHECK(l.group_size() <= kMaxTokens, "the CUDA kernels take windows of at most ",
              kMaxTokens, " tokens, got ", l.group_size());
  TORCH_CHECK(d <= kMaxDim, "the CUDA kernels take d <= ", kMaxDim, ", got ", d);
}

std::tuple<at::Tensor, at::Tensor> window_attention_fwd(const at::Tensor& q, const at::Tensor& k,
                                                        const at::Tensor& v,
                                                        const std::optional<at::Tensor>& bias_opt,
                                                        std::string mode, int64_t window,
                                                        double scale) {
  const at::Tensor bias = contiguous_or_undefined(bias_opt);
  const GroupLayout l = check_window_attention_fwd(q, k, v, bias, mode, window);
  check_window_limits(l, q.size(3));
  const c10::cuda::CUDAGuard guard(q.device());
  const int64_t n = l.group_size();
  at::Tensor out = at::empty(q.sizes(), q.options());
  at::Tensor attn = at::empty({l.num_groups(), n, n}, q.options());
  with_cuda_type(q.scalar_type(), "window_attention_fwd", [&](auto tag) {
    using T = decltype(tag);
    const auto a = window_fwd_args<T>(l, q, k, v, bias, scale, out, attn);
    check_launch(window_attention_forward(a, current_stream()), "window_attention_fwd");
  });
  return {out, attn};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> window_attention_bwd(
    const at::Tensor& grad_out, const std::optional<at::Tensor>& grad_attn_opt, const at::Tensor& q,
    const at::Tensor& k, const at::Tensor& v, const at::Tensor& attn_in,
    const std::optional<at::Tensor>& bias_opt, std::string mode, int64_t window, double scale) {
  const at::Tensor grad_attn = contiguous_or_undefined(grad_attn_opt);
  const at::Tensor bias = contiguous_or_undefined(bias_opt);
  const GroupLayout l =
      check_window_attention_bwd(grad_out, grad_attn, q, k, v, attn_in, bias, mode, window);
  check_window_limits(l, q.size(3));
  const c10::cuda::CUDAGuard guard(q.device());
  const at::Tensor attn = attn_in.contiguous();
  const int64_t n = l.group_size();
  at::Tensor dq = at::empty(q.sizes(), q.options());
  at::Tensor dk = at::empty(q.sizes(), q.options());
  at::Tensor dv = at::empty(q.sizes(), q.options());
  at::Tensor dbias = at::zeros({n, n}, q.options());  // stays zero without a bias
  at::Tensor workspace;  // per-window dS for the dbias reduction
  if (bias.defined()) workspace = at::empty({l.num_groups(), n, n}, q.options().dtype(at::kFloat));
  with_cuda_type(q.scalar_type(), "window_attention_bwd", [&](auto tag) {
    using T = decltype(tag);
    auto a = window_bwd_args<T>(l, grad_out, grad_attn, q, k, v, attn, scale, dq, dk, dv);
    a.dbias = bias.defined() ? static_cast<T*>(dbias.data_ptr()) : nullptr;
    check_launch(window_attention_backward(a, data_or_null<float>(workspace), current_stream()),
                 "window_attention_bwd");
  });
  return {dq, dk, dv, dbias};
}

at::Tensor shared_window_attention_fwd(const at::Tensor& attn_in, const at::Tensor& v,
                                       std::string mode, int64_t window) {
  const GroupLayout l = check_shared_window_attention(attn_in, v, at::Tensor(), mode, window);
  check_window_limits(l, v.size(3));
  const c10::cuda::CUDAGuard guard(v.device());
  const at::Tensor attn = attn_in.contiguous();
  at::Tensor out = at::empty(v.sizes(), v.options());
  with_cuda_type(v.scalar_type(), "shared_window_attention_fwd", [&](auto tag) {
    using T = decltype(tag);
    const auto a = shared_fwd_args<T>(l, attn, v, out);
    check_launch(shared_window_attention_forward(a, current_stream()),
                 "shared_window_attention_fwd");
  });
  return out;
}

std::tuple<at::Tensor, at::Tensor> shared_window_attention_bwd(const at::Tensor& grad_out,
                                                               const at::Tensor& attn_in,
                                                               const at::Tensor& v,
                                                               std::string mode, int64_t window) {
  const GroupLayout l = check_shared_window_attention(attn_in, v, grad_out, mode, window);
  check_window_limits(l, v.size(3));
  const c10::cuda::CUDAGuard guard(v.device());
  const at::Tensor attn = attn_in.contiguous();
  at::Tensor dattn = at::empty(attn.sizes(), v.options());
  at::Tensor dv = at::empty(v.sizes(), v.options());
  with_cuda_type(v.scalar_type(), "shared_window_attention_bwd", [&](auto tag) {
    using T = decltype(tag);
    const auto a = shared_bwd_args<T>(l, attn, v, grad_out, dattn, dv);
    check_launch(shared_window_attention_backward(a, current_stream()),
                 "shared_window_attention_bwd");
  });
  return {dattn, dv};
}

}  // namespace

TORCH_LIBRARY_IMPL(asid_fast, CUDA, m) {
  m.impl("window_attention_fwd", &window_attention_fwd);
  m.impl("window_attention_bwd", &window_attention_bwd);
  m.impl("shared_window_attention_fwd", &shared_window_attention_fwd);
  m.impl("shared_window_attention_bwd", &shared_window_attention_bwd);
}

}  // namespace cuda
}  // namespace asid
