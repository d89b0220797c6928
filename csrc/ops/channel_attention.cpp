// Entries of channel_attention_{fwd,bwd} (schemas: asid_fast/ops/channel_attention.py) for CPU
// and CUDA tensors: argument checks, outputs (attn, rq, rk in float32 for half-precision maps),
// the kernel arguments, and the launch on the tensors' device (CPU kernels:
// cpu/kernels/channel_attention.h; CUDA: cuda/channel_attention.cu).
#include <ATen/Dispatch.h>
#include <torch/library.h>

#include "cpu/parallel.h"
#include "ops/bf16_products.h"
#include "ops/channel_attention.h"
#include "ops/checks.h"
#include "ops/output_cache.h"
#ifdef ASID_FAST_WITH_CUDA
#include "cuda/binding_utils.h"
#endif

namespace asid {
namespace {

template <typename T, typename S>
ChannelFwdArgs<T, S> fwd_args(const GroupLayout& l, const at::Tensor& q, const at::Tensor& k,
                              const at::Tensor& v, const at::Tensor& temperature,
                              const at::Tensor& out, const at::Tensor& attn, const at::Tensor& rq,
                              const at::Tensor& rk) {
  ChannelFwdArgs<T, S> a;
  a.layout = l;
  a.channels = q.size(3);
  a.q = map_view<const T>(q);
  a.k = map_view<const T>(k);
  a.v = map_view<const T>(v);
  a.temperature = data_or_null<const T>(temperature);
  a.out = map_view<T>(out);
  a.attn = data_or_null<S>(attn);
  a.rq = data_or_null<S>(rq);
  a.rk = data_or_null<S>(rk);
  return a;
}

template <typename T, typename S>
ChannelBwdArgs<T, S> bwd_args(const GroupLayout& l, const at::Tensor& grad_out,
                              const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                              const at::Tensor& temperature, const at::Tensor& attn,
                              const at::Tensor& rq, const at::Tensor& rk, const at::Tensor& dq,
                              const at::Tensor& dk, const at::Tensor& dv) {
  ChannelBwdArgs<T, S> a;
  a.layout = l;
  a.channels = q.size(3);
  a.q = map_view<const T>(q);
  a.k = map_view<const T>(k);
  a.v = map_view<const T>(v);
  a.grad_out = map_view<const T>(grad_out);
  a.temperature = data_or_null<const T>(temperature);
  a.attn = data_or_null<const S>(attn);
  a.rq = data_or_null<const S>(rq);
  a.rk = data_or_null<const S>(rk);
  a.dq = map_view<T>(dq);
  a.dk = map_view<T>(dk);
  a.dv = map_view<T>(dv);
  return a;
}

#ifdef ASID_FAST_WITH_CUDA
void check_cuda_limits(int64_t channels) {
  TORCH_CHECK(channels <= cuda::kMaxChannels, "the CUDA kernels take at most ",
              cuda::kMaxChannels, " channels, got ", channels);
}
#endif

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> channel_attention_fwd(
    const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& temperature,
    std::string mode, int64_t window) {
  const GroupLayout l = check_channel_attention_fwd(q, k, v, temperature, mode, window);
  const int64_t c = q.size(3), groups = l.num_groups();
  const auto stats = q.options().dtype(channel_stats_dtype(q.scalar_type()));
  at::Tensor out = empty_output(q.sizes(), q.options());
  at::Tensor attn = empty_output({groups, c, c}, stats);
  at::Tensor rq = empty_output({groups, c}, stats);
  at::Tensor rk = empty_output({groups, c}, stats);
  const at::Tensor t = temperature.contiguous();
  if (q.is_cuda()) {
#ifdef ASID_FAST_WITH_CUDA
    check_cuda_limits(c);
    const c10::cuda::CUDAGuard guard(q.device());
    cuda::with_cuda_type(q.scalar_type(), "channel_attention_fwd", [&](auto tag) {
      using T = decltype(tag);
      cuda::check_launch(
          cuda::channel_attention_forward(fwd_args<T, float>(l, q, k, v, t, out, attn, rq, rk),
                                          cuda::current_stream()),
          "channel_attention_fwd");
    });
#endif
    return {out, attn, rq, rk};
  }
  AT_DISPATCH_FLOATING_TYPES(q.scalar_type(), "channel_attention_fwd", [&] {
    auto a = fwd_args<scalar_t, scalar_t>(l, q, k, v, t, out, attn, rq, rk);
    a.bf16_products = bf16_products(q);
    cpu::run_kernel(ASID_CPU_KERNEL(channel_forward, scalar_t), a, groups,
                    cpu::fixed_parts(groups));
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
  const int64_t groups = l.num_groups();
  at::Tensor dq = empty_output(q.sizes(), q.options());
  at::Tensor dk = empty_output(q.sizes(), q.options());
  at::Tensor dv = empty_output(q.sizes(), q.options());
  at::Tensor dtemperature = empty_output(temperature.sizes(), q.options());
  if (q.is_cuda()) {
#ifdef ASID_FAST_WITH_CUDA
    check_cuda_limits(q.size(3));
    const c10::cuda::CUDAGuard guard(q.device());
    at::Tensor workspace = empty_output({groups}, q.options().dtype(at::kFloat));
    cuda::with_cuda_type(q.scalar_type(), "channel_attention_bwd", [&](auto tag) {
      using T = decltype(tag);
      auto a = bwd_args<T, float>(l, grad_out, q, k, v, t, attn, rq, rk, dq, dk, dv);
      a.dtemperature = static_cast<T*>(dtemperature.data_ptr());
      cuda::check_launch(cuda::channel_attention_backward(a, workspace.data_ptr<float>(),
                                                          cuda::current_stream()),
                         "channel_attention_bwd");
    });
#endif
    return {dq, dk, dv, dtemperature};
  }
  AT_DISPATCH_FLOATING_TYPES(q.scalar_type(), "channel_attention_bwd", [&] {
    auto a = bwd_args<scalar_t, scalar_t>(l, grad_out, q, k, v, t, attn, rq, rk, dq, dk, dv);
    const int64_t parts = cpu::fixed_parts(groups);
    const cpu::PartialSums<scalar_t> partials(parts, 1);
    a.dtemperature = partials.data();
    cpu::run_kernel(ASID_CPU_KERNEL(channel_backward, scalar_t), a, groups, parts);
    partials.sum_into(dtemperature.data_ptr<scalar_t>());
  });
  return {dq, dk, dv, dtemperature};
}

}  // namespace

TORCH_LIBRARY_IMPL(asid_fast, CPU, m) {
  m.impl("channel_attention_fwd", &channel_attention_fwd);
  m.impl("channel_attention_bwd", &channel_attention_bwd);
}

#ifdef ASID_FAST_WITH_CUDA
TORCH_LIBRARY_IMPL(asid_fast, CUDA, m) {
  m.impl("channel_attention_fwd", &channel_attention_fwd);
  m.impl("channel_attention_bwd", &channel_attention_bwd);
}
#endif

}  // namespace asid
