// CUDA registrations of channel_attention_{fwd,bwd}: checks, outputs (attn, rq, rk in float32),
// the current stream; the kernels are in channel_attention.cu.
#include <torch/library.h>

#include "../op_args_builders.h"
#include "../op_inputs.h"
#include "binding_utils.h"

namespace asid {
namespace cuda {
namespace {

void check_channel_limits(int64_t channels) {
  TORCH_CHECK(channels <= kMaxChannels, "the CUDA kernels take at most ", kMaxChannels,
              " channels, got ", channels);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> channel_attention_fwd(
    const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& temperature,
    std::string mode, int64_t window) {
  const GroupLayout l = check_channel_attention_fwd(q, k, v, temperature, mode, window);
  const int64_t c = q.size(3);
  check_channel_limits(c);
  const c10::cuda::CUDAGuard guard(q.device());
  const auto stats = q.options().dtype(at::kFloat);
  at::Tensor out = at::empty(q.sizes(), q.options());
  at::Tensor attn = at::empty({l.num_groups(), c, c}, stats);
  at::Tensor rq = at::empty({l.num_groups(), c}, stats);
  at::Tensor rk = at::empty({l.num_groups(), c}, stats);
  const at::Tensor t = temperature.contiguous();
  with_cuda_type(q.scalar_type(), "channel_attention_fwd", [&](auto tag) {
    using T = decltype(tag);
    const auto a = channel_fwd_args<T, float>(l, q, k, v, t, out, attn, rq, rk);
    check_launch(channel_attention_forward(a, current_stream()), "channel_attention_fwd");
  });
  return {out, attn, rq, rk};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> channel_attention_bwd(
    const at::Tensor& grad_out, const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
    const at::Tensor& temperature, const at::Tensor& attn_in, const at::Tensor& rq_in,
    const at::Tensor& rk_in, std::string mode, int64_t window) {
  const GroupLayout l = check_channel_attention_bwd(grad_out, q, k, v, temperature, attn_in, rq_in,
                                                    rk_in, mode, window);
  check_channel_limits(q.size(3));
  const c10::cuda::CUDAGuard guard(q.device());
  const at::Tensor attn = attn_in.contiguous(), rq = rq_in.contiguous(), rk = rk_in.contiguous();
  const at::Tensor t = temperature.contiguous();
  at::Tensor dq = at::empty(q.sizes(), q.options());
  at::Tensor dk = at::empty(q.sizes(), q.options());
  at::Tensor dv = at::empty(q.sizes(), q.options());
  at::Tensor dtemperature = at::empty(temperature.sizes(), q.options());
  at::Tensor workspace = at::empty({l.num_groups()}, q.options().dtype(at::kFloat));
  with_cuda_type(q.scalar_type(), "channel_attention_bwd", [&](auto tag) {
    using T = decltype(tag);
    auto a = channel_bwd_args<T, float>(l, grad_out, q, k, v, t, attn, rq, rk, dq, dk, dv);
    a.dtemperature = static_cast<T*>(dtemperature.data_ptr());
    check_launch(channel_attention_backward(a, workspace.data_ptr<float>(), current_stream()),
                 "channel_attention_bwd");
  });
  return {dq, dk, dv, dtemperature};
}

}  // namespace

TORCH_LIBRARY_IMPL(asid_fast, CUDA, m) {
  m.impl("channel_attention_fwd", &channel_attention_fwd);
  m.impl("channel_attention_bwd", &channel_attention_bwd);
}

}  // namespace cuda
}  // namespace asid
