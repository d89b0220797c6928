// CPU registrations of channel_attention_{fwd,bwd} (schemas in csrc/op_schemas.cpp): argument
// checks, outputs, the parallel run; the per-group work is in channel_kernels.h.
#include <ATen/Dispatch.h>
#include <torch/library.h>

#include "../op_args_builders.h"
#include "../op_inputs.h"
#include "kernel_table.h"
#include "parallel_parts.h"

namespace asid {
namespace cpu {
namespace {

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> channel_attention_fwd(
    const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& temperature,
    std::string mode, int64_t window) {
  const GroupLayout l = check_channel_attention_fwd(q, k, v, temperature, mode, window);
  const int64_t c = q.size(3);
  at::Tensor out = at::empty(q.sizes(), q.options());
  at::Tensor attn = at::empty({l.num_groups(), c, c}, q.options());
  at::Tensor rq = at::empty({l.num_groups(), c}, q.options());
  at::Tensor rk = at::empty({l.num_groups(), c}, q.options());
  const at::Tensor t = temperature.contiguous();
  AT_DISPATCH_FLOATING_TYPES(q.scalar_type(), "channel_attention_fwd", [&] {
    run_kernel(kernels<scalar_t>().channel_forward,
               channel_fwd_args<scalar_t, scalar_t>(l, q, k, v, t, out, attn, rq, rk),
               l.num_groups());
  });
  return {out, attn, rq, rk};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> channel_attention_bwd(
    const at::Tensor& grad_out, const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
    const at::Tensor& temperature, const at::Tensor& attn_in, const at::Tensor& rq_in,
    const at::Tensor& rk_in, std::string mode, int64_t window) {
  const GroupLayout l = check_channel_attention_bwd(grad_out, q, k, v, temperature, attn_in, rq_in,
                                                    rk_in, mode, window);
  const at::Tensor attn = attn_in.contiguous(), rq = rq_in.contiguous(), rk = rk_in.contiguous();
  const at::Tensor t = temperature.contiguous();
  at::Tensor dq = at::empty(q.sizes(), q.options());
  at::Tensor dk = at::empty(q.sizes(), q.options());
  at::Tensor dv = at::empty(q.sizes(), q.options());
  at::Tensor dtemperature = at::empty(temperature.sizes(), q.options());
  AT_DISPATCH_FLOATING_TYPES(q.scalar_type(), "channel_attention_bwd", [&] {
    auto a = channel_bwd_args<scalar_t, scalar_t>(l, grad_out, q, k, v, t, attn, rq, rk, dq, dk,
                                                  dv);
    const PartialSums<scalar_t> partials(WorkQueue::parts_for(l.num_groups()), 1);
    a.dtemperature = partials.data();
    run_kernel(kernels<scalar_t>().channel_backward, a, l.num_groups());
    partials.sum_into(dtemperature.data_ptr<scalar_t>());
  });
  return {dq, dk, dv, dtemperature};
}

}  // namespace

TORCH_LIBRARY_IMPL(asid_fast, CPU, m) {
  m.impl("channel_attention_fwd", &channel_attention_fwd);
  m.impl("channel_attention_bwd", &channel_attention_bwd);
}

}  // namespace cpu
}  // namespace asid
