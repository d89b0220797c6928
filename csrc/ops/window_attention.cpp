// Entries of window_attention_{fwd,bwd} and shared_window_attention_{fwd,bwd} (schemas:
// asid_fast/ops/window_attention.py) for CPU and CUDA tensors: argument checks, outputs, the
// kernel arguments, and the launch on the tensors' device (CPU kernels: cpu/kernels/
// window_attention.h; CUDA: cuda/window_attention.cu).
#include <ATen/Dispatch.h>
#include <torch/library.h>

#include "cpu/parallel.h"
#include "ops/checks.h"
#include "ops/output_cache.h"
#include "ops/window_attention.h"
#ifdef ASID_FAST_WITH_CUDA
#include "cuda/binding_utils.h"
#endif

namespace asid {
namespace {

template <typename T>
WindowFwdArgs<T> fwd_args(const GroupLayout& l, const at::Tensor& q, const at::Tensor& k,
                          const at::Tensor& v, const at::Tensor& bias, double scale,
                          const at::Tensor& out, const at::Tensor& attn) {
  WindowFwdArgs<T> a;
  a.layout = l;
  a.dim = q.size(3);
  a.q = map_view<const T>(q);
  a.k = map_view<const T>(k);
  a.v = map_view<const T>(v);
  a.bias = data_or_null<const T>(bias);
  a.scale = scale;
  a.out = map_view<T>(out);
  a.attn = data_or_null<T>(attn);
  return a;
}

template <typename T>
WindowBwdArgs<T> bwd_args(const GroupLayout& l, const at::Tensor& grad_out,
                          const at::Tensor& grad_attn, const at::Tensor& q, const at::Tensor& k,
                          const at::Tensor& v, const at::Tensor& attn, double scale,
                          const at::Tensor& dq, const at::Tensor& dk, const at::Tensor& dv) {
  WindowBwdArgs<T> a;
  a.layout = l;
  a.dim = q.size(3);
  a.q = map_view<const T>(q);
  a.k = map_view<const T>(k);
  a.v = map_view<const T>(v);
  a.grad_out = map_view<const T>(grad_out);
  a.attn = data_or_null<const T>(attn);
  a.grad_attn = data_or_null<const T>(grad_attn);
  a.scale = scale;
  a.dq = map_view<T>(dq);
  a.dk = map_view<T>(dk);
  a.dv = map_view<T>(dv);
  return a;
}

template <typename T>
SharedFwdArgs<T> shared_fwd_args(const GroupLayout& l, const at::Tensor& attn,
                                 const at::Tensor& v, const at::Tensor& out) {
  SharedFwdArgs<T> a;
  a.layout = l;
  a.dim = v.size(3);
  a.attn = data_or_null<const T>(attn);
  a.v = map_view<const T>(v);
  a.out = map_view<T>(out);
  return a;
}

template <typename T>
SharedBwdArgs<T> shared_bwd_args(const GroupLayout& l, const at::Tensor& attn,
                                 const at::Tensor& v, const at::Tensor& grad_out,
                                 const at::Tensor& dattn, const at::Tensor& dv) {
  SharedBwdArgs<T> a;
  a.layout = l;
  a.dim = v.size(3);
  a.attn = data_or_null<const T>(attn);
  a.v = map_view<const T>(v);
  a.grad_out = map_view<const T>(grad_out);
  a.dattn = data_or_null<T>(dattn);
  a.dv = map_view<T>(dv);
  return a;
}

#ifdef ASID_FAST_WITH_CUDA
void check_cuda_limits(const GroupLayout& l, int64_t d) {
  TORCH_CHECK(l.group_size() <= cuda::kMaxTokens, "the CUDA kernels take windows of at most ",
              cuda::kMaxTokens, " tokens, got ", l.group_size());
  TORCH_CHECK(d <= cuda::kMaxDim, "the CUDA kernels take d <= ", cuda::kMaxDim, ", got ", d);
}
#endif

// The windows' reduction of the backward splits the work into parts by their count alone.
int64_t window_parts(const GroupLayout& l) { return cpu::fixed_parts(l.num_groups()); }

std::tuple<at::Tensor, at::Tensor> window_attention_fwd(const at::Tensor& q, const at::Tensor& k,
                                                        const at::Tensor& v,
                                                        const std::optional<at::Tensor>& bias_opt,
                                                        std::string mode, int64_t window,
                                                        double scale) {
  const at::Tensor bias = contiguous_or_undefined(bias_opt);
  const GroupLayout l = check_window_attention_fwd(q, k, v, bias, mode, window);
  const int64_t n = l.group_size();
  at::Tensor out = empty_output(q.sizes(), q.options());
  at::Tensor attn = empty_output({l.num_groups(), n, n}, q.options());
  if (q.is_cuda()) {
#ifdef ASID_FAST_WITH_CUDA
    check_cuda_limits(l, q.size(3));
    const c10::cuda::CUDAGuard guard(q.device());
    cuda::with_cuda_type(q.scalar_type(), "window_attention_fwd", [&](auto tag) {
      using T = decltype(tag);
      cuda::check_launch(cuda::window_attention_forward(
                             fwd_args<T>(l, q, k, v, bias, scale, out, attn), cuda::current_stream()),
                         "window_attention_fwd");
    });
#endif
    return {out, attn};
  }
  AT_DISPATCH_FLOATING_TYPES(q.scalar_type(), "window_attention_fwd", [&] {
    cpu::run_kernel(ASID_CPU_KERNEL(window_forward, scalar_t),
                    fwd_args<scalar_t>(l, q, k, v, bias, scale, out, attn), l.num_groups(),
                    window_parts(l));
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
  at::Tensor dq = empty_output(q.sizes(), q.options());
  at::Tensor dk = empty_output(q.sizes(), q.options());
  at::Tensor dv = empty_output(q.sizes(), q.options());
  at::Tensor dbias = empty_output({n, n}, q.options()).zero_();  // stays zero without a bias
  if (q.is_cuda()) {
#ifdef ASID_FAST_WITH_CUDA
    check_cuda_limits(l, q.size(3));
    const c10::cuda::CUDAGuard guard(q.device());
    at::Tensor workspace;  // per-window dS for the dbias reduction
    if (bias.defined())
      workspace = empty_output({l.num_groups(), n, n}, q.options().dtype(at::kFloat));
    cuda::with_cuda_type(q.scalar_type(), "window_attention_bwd", [&](auto tag) {
      using T = decltype(tag);
      auto a = bwd_args<T>(l, grad_out, grad_attn, q, k, v, attn, scale, dq, dk, dv);
      a.dbias = bias.defined() ? static_cast<T*>(dbias.data_ptr()) : nullptr;
      cuda::check_launch(cuda::window_attention_backward(a, data_or_null<float>(workspace),
                                                         cuda::current_stream()),
                         "window_attention_bwd");
    });
#endif
    return {dq, dk, dv, dbias};
  }
  AT_DISPATCH_FLOATING_TYPES(q.scalar_type(), "window_attention_bwd", [&] {
    auto a = bwd_args<scalar_t>(l, grad_out, grad_attn, q, k, v, attn, scale, dq, dk, dv);
    const auto kernel = ASID_CPU_KERNEL(window_backward, scalar_t);
    const int64_t parts = window_parts(l);
    if (!bias.defined()) return cpu::run_kernel(kernel, a, l.num_groups(), parts);
    const cpu::PartialSums<scalar_t> partials(parts, n * n);
    a.dbias = partials.data();
    cpu::run_kernel(kernel, a, l.num_groups(), parts);
    partials.sum_into(dbias.data_ptr<scalar_t>());
  });
  return {dq, dk, dv, dbias};
}

at::Tensor shared_window_attention_fwd(const at::Tensor& attn_in, const at::Tensor& v,
                                       std::string mode, int64_t window) {
  const GroupLayout l = check_shared_window_attention(attn_in, v, at::Tensor(), mode, window);
  const at::Tensor attn = attn_in.contiguous();
  at::Tensor out = empty_output(v.sizes(), v.options());
  if (v.is_cuda()) {
#ifdef ASID_FAST_WITH_CUDA
    check_cuda_limits(l, v.size(3));
    const c10::cuda::CUDAGuard guard(v.device());
    cuda::with_cuda_type(v.scalar_type(), "shared_window_attention_fwd", [&](auto tag) {
      using T = decltype(tag);
      cuda::check_launch(cuda::shared_window_attention_forward(shared_fwd_args<T>(l, attn, v, out),
                                                               cuda::current_stream()),
                         "shared_window_attention_fwd");
    });
#endif
    return out;
  }
  AT_DISPATCH_FLOATING_TYPES(v.scalar_type(), "shared_window_attention_fwd", [&] {
    cpu::run_kernel(ASID_CPU_KERNEL(shared_forward, scalar_t),
                    shared_fwd_args<scalar_t>(l, attn, v, out), l.num_groups(), window_parts(l));
  });
  return out;
}

std::tuple<at::Tensor, at::Tensor> shared_window_attention_bwd(const at::Tensor& grad_out,
                                                               const at::Tensor& attn_in,
                                                               const at::Tensor& v,
                                                               std::string mode, int64_t window) {
  const GroupLayout l = check_shared_window_attention(attn_in, v, grad_out, mode, window);
  const at::Tensor attn = attn_in.contiguous();
  at::Tensor dattn = empty_output(attn.sizes(), v.options());
  at::Tensor dv = empty_output(v.sizes(), v.options());
  if (v.is_cuda()) {
#ifdef ASID_FAST_WITH_CUDA
    check_cuda_limits(l, v.size(3));
    const c10::cuda::CUDAGuard guard(v.device());
    cuda::with_cuda_type(v.scalar_type(), "shared_window_attention_bwd", [&](auto tag) {
      using T = decltype(tag);
      cuda::check_launch(
          cuda::shared_window_attention_backward(shared_bwd_args<T>(l, attn, v, grad_out, dattn, dv),
                                                 cuda::current_stream()),
          "shared_window_attention_bwd");
    });
#endif
    return {dattn, dv};
  }
  AT_DISPATCH_FLOATING_TYPES(v.scalar_type(), "shared_window_attention_bwd", [&] {
    cpu::run_kernel(ASID_CPU_KERNEL(shared_backward, scalar_t),
                    shared_bwd_args<scalar_t>(l, attn, v, grad_out, dattn, dv), l.num_groups(),
                    window_parts(l));
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

#ifdef ASID_FAST_WITH_CUDA
TORCH_LIBRARY_IMPL(asid_fast, CUDA, m) {
  m.impl("window_attention_fwd", &window_attention_fwd);
  m.impl("window_attention_bwd", &window_attention_bwd);
  m.impl("shared_window_attention_fwd", &shared_window_attention_fwd);
  m.impl("shared_window_attention_bwd", &shared_window_attention_bwd);
}
#endif

}  // namespace asid
