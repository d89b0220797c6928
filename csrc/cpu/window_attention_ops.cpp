// CPU registrations of window_attention_{fwd,bwd} and shared_window_attention_{fwd,bwd}
// (schemas in csrc/op_schemas.cpp): argument checks, outputs, the parallel run; the per-window work
// is in window_kernels.h.
#include <ATen/Dispatch.h>
#include <torch/library.h>

#include "../op_args_builders.h"
#include "../op_inputs.h"
#include "kernel_table.h"
#include "parallel_parts.h"

namespace asid {
namespace cpu {
namespace {

std::tuple<at::Tensor, at::Tensor> window_attention_fwd(const at::Tensor& q, const at::Tensor& k,
                                                        const at::Tensor& v,
                                                        const std::optional<at::Tensor>& bias_opt,
                                                        std::string mode, int64_t window,
                                                        double scale) {
  const at::Tensor bias = contiguous_or_undefined(bias_opt);
  const GroupLayout l = check_window_attention_fwd(q, k, v, bias, mode, window);
  const int64_t n = l.group_size();
  at::Tensor out = at::empty(q.sizes(), q.options());
  at::Tensor attn = at::empty({l.num_groups(), n, n}, q.options());
  AT_DISPATCH_FLOATING_TYPES(q.scalar_type(), "window_attention_fwd", [&] {
    run_kernel(kernels<scalar_t>().window_forward,
               window_fwd_args<scalar_t>(l, q, k, v, bias, scale, out, attn), l.num_groups());
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
  const at::Tensor attn = attn_in.contiguous();
  const int64_t n = l.group_size();
  at::Tensor dq = at::empty(q.sizes(), q.options());
  at::Tensor dk = at::empty(q.sizes(), q.options());
  at::Tensor dv = at::empty(q.sizes(), q.options());
  at::Tensor dbias =
      bias.defined() ? at::empty({n, n}, q.options()) : at::zeros({n, n}, q.options());
  AT_DISPATCH_FLOATING_TYPES(q.scalar_type(), "window_attention_bwd", [&] {
    auto a = window_bwd_args<scalar_t>(l, grad_out, grad_attn, q, k, v, attn, scale, dq, dk, dv);
    if (!bias.defined()) return run_kernel(kernels<scalar_t>().window_backward, a, l.num_groups());
    const PartialSums<scalar_t> partials(WorkQueue::parts_for(l.num_groups()), n * n);
    a.dbias = partials.data();
    run_kernel(kernels<scalar_t>().window_backward, a, l.num_groups());
    partials.sum_into(dbias.data_ptr<scalar_t>());
  });
  return {dq, dk, dv, dbias};
}

at::Tensor shared_window_attention_fwd(const at::Tensor& attn_in, const at::Tensor& v,
                                       std::string mode, int64_t window) {
  const GroupLayout l = check_shared_window_attention(attn_in, v, at::Tensor(), mode, window);
  const at::Tensor attn = attn_in.contiguous();
  at::Tensor out = at::empty(v.sizes(), v.options());
  AT_DISPATCH_FLOATING_TYPES(v.scalar_type(), "shared_window_attention_fwd", [&] {
    run_kernel(kernels<scalar_t>().shared_forward, shared_fwd_args<scalar_t>(l, attn, v, out),
               l.num_groups());
  });
  return out;
}

std::tuple<at::Tensor, at::Tensor> shared_window_attention_bwd(const at::Tensor& grad_out,
                                                               const at::Tensor& attn_in,
                                                               const at::Tensor& v,
                                                               std::string mode, int64_t window) {
  const GroupLayout l = check_shared_window_attention(attn_in, v, grad_out, mode, window);
  const at::Tensor attn = attn_in.contiguous();
  at::Tensor dattn = at::empty(attn.sizes(), v.options());
  at::Tensor dv = at::empty(v.sizes(), v.options());
  AT_DISPATCH_FLOATING_TYPES(v.scalar_type(), "shared_window_attention_bwd", [&] {
    run_kernel(kernels<scalar_t>().shared_backward,
               shared_bwd_args<scalar_t>(l, attn, v, grad_out, dattn, dv), l.num_groups());
  });
  return {dattn, dv};
}

}  // namespace

TORCH_LIBRARY_IMPL(asid_fast, CPU, m) {
  m.impl("window_attention_fwd", &window_attention_fwd);
  m.impl("window_attention_bwd", &window_attention_bwd);
  m.impl("shared_window_attention_fwd", &shared_window_attention_fwd);
  m.impl("shared_window_attention_bwd", &shared_window_attention_bwd);
}

}  // namespace cpu
}  // namespace asid
