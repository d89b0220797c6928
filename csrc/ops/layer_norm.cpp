// Entries of layer_norm_{fwd,bwd} (schemas: asid_fast/ops/layer_norm.py) for CPU and CUDA
// tensors: argument checks, padded parameter copies (CPU), outputs and partial sums, the kernel
// arguments, and the launch on the tensors' device (cpu/kernels/layer_norm.h,
// cuda/layer_norm.cu). Their autograd: ops/autograd.cpp.
#include <ATen/Dispatch.h>
#include <torch/library.h>

#include "cpu/parallel.h"
#include "ops/checks.h"
#include "ops/output_cache.h"
#include "ops/layer_norm.h"
#ifdef ASID_FAST_WITH_CUDA
#include "cuda/binding_utils.h"
#endif

namespace asid {
namespace {

constexpr int64_t kPixelRowsPerPart = 2048;

int64_t parts_for(const RowGrid& g) {
  return (g.rows() + kPixelRowsPerPart - 1) / kPixelRowsPerPart;
}

template <typename T, typename S>
LayerNormFwdArgs<T, S> fwd_args(const RowGrid& g, int64_t ld, const at::Tensor& x,
                                const at::Tensor& w, const at::Tensor& b, double eps,
                                const at::Tensor& y, const at::Tensor& mean,
                                const at::Tensor& rstd) {
  LayerNormFwdArgs<T, S> a;
  a.grid = g;
  a.ld = ld;
  a.x = map_view<const T>(x);
  a.weight = data_or_null<const T>(w);
  a.bias = data_or_null<const T>(b);
  a.eps = eps;
  a.y = data_or_null<T>(y);
  a.mean = data_or_null<S>(mean);
  a.rstd = data_or_null<S>(rstd);
  return a;
}

template <typename T, typename S>
LayerNormBwdArgs<T, S> bwd_args(const RowGrid& g, int64_t ld, const at::Tensor& grad_y,
                                const at::Tensor& x, const at::Tensor& w, const at::Tensor& mean,
                                const at::Tensor& rstd, const at::Tensor& dx) {
  LayerNormBwdArgs<T, S> a;
  a.grid = g;
  a.ld = ld;
  a.x = map_view<const T>(x);
  a.grad_y = data_or_null<const T>(grad_y);
  a.weight = data_or_null<const T>(w);
  a.mean = data_or_null<const S>(mean);
  a.rstd = data_or_null<const S>(rstd);
  a.dx = data_or_null<T>(dx);
  return a;
}

at::ScalarType stats_dtype(at::ScalarType t) { return t == at::kDouble ? at::kDouble : at::kFloat; }

std::tuple<at::Tensor, at::Tensor, at::Tensor> layer_norm_fwd(const at::Tensor& x,
                                                              const at::Tensor& weight,
                                                              const at::Tensor& bias,
                                                              double eps) {
  const RowGrid g = check_layer_norm_fwd(x, weight, bias);
  at::Tensor y = empty_output(x.sizes(), x.options());
  at::Tensor mean =
      empty_output(x.sizes().slice(0, 3), x.options().dtype(stats_dtype(x.scalar_type())));
  at::Tensor rstd = empty_output(mean.sizes(), mean.options());
  if (x.is_cuda()) {
#ifdef ASID_FAST_WITH_CUDA
    const c10::cuda::CUDAGuard guard(x.device());
    const at::Tensor w = weight.contiguous(), b = bias.contiguous();
    cuda::with_cuda_types(x.scalar_type(), "layer_norm_fwd", [&](auto t, auto s) {
      using T = decltype(t);
      using S = decltype(s);
      cuda::check_launch(
          cuda::layer_norm_forward(fwd_args<T, S>(g, g.channels, x, w, b, eps, y, mean, rstd),
                                   cuda::current_stream()),
          "layer_norm_fwd");
    });
#endif
    return {y, mean, rstd};
  }
  const int64_t ld = padded(g.channels);
  const at::Tensor w = padded_vector(weight, ld), b = padded_vector(bias, ld);
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "layer_norm_fwd", [&] {
    cpu::run_kernel(ASID_CPU_KERNEL(layer_norm_forward, scalar_t),
                    fwd_args<scalar_t, scalar_t>(g, ld, x, w, b, eps, y, mean, rstd), g.rows(),
                    parts_for(g));
  });
  return {y, mean, rstd};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> layer_norm_bwd(const at::Tensor& grad_y,
                                                              const at::Tensor& x,
                                                              const at::Tensor& weight,
                                                              const at::Tensor& mean,
                                                              const at::Tensor& rstd) {
  const RowGrid g =
      check_layer_norm_bwd(grad_y, x, weight, mean, rstd, stats_dtype(x.scalar_type()));
  at::Tensor dx = empty_output(x.sizes(), x.options());
  if (x.is_cuda()) {
#ifdef ASID_FAST_WITH_CUDA
    const c10::cuda::CUDAGuard guard(x.device());
    const at::Tensor w = weight.contiguous();
    at::Tensor partials = empty_output({2, cuda::layer_norm_bwd_blocks(g), g.channels},
                                    x.options().dtype(stats_dtype(x.scalar_type())));
    cuda::with_cuda_types(x.scalar_type(), "layer_norm_bwd", [&](auto t, auto s) {
      using T = decltype(t);
      using S = decltype(s);
      auto a = bwd_args<T, S>(g, g.channels, grad_y, x, w, mean, rstd, dx);
      a.dweight = data_or_null<S>(partials[0]);
      a.dbias = data_or_null<S>(partials[1]);
      cuda::check_launch(cuda::layer_norm_backward(a, cuda::current_stream()), "layer_norm_bwd");
    });
    const at::Tensor sums = partials.sum(1).to(weight.scalar_type());
    return {dx, sums[0].clone(), sums[1].clone()};
#endif
  }
  const int64_t ld = padded(g.channels), parts = parts_for(g);
  const at::Tensor w = padded_vector(weight, ld);
  at::Tensor sums = empty_output({2, ld}, x.options());  // dweight, dbias
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "layer_norm_bwd", [&] {
    auto a = bwd_args<scalar_t, scalar_t>(g, ld, grad_y, x, w, mean, rstd, dx);
    const cpu::PartialSums<scalar_t> partials(parts, 2 * ld);
    a.dweight = partials.data();
    a.dbias = partials.data() + ld;
    cpu::run_kernel(ASID_CPU_KERNEL(layer_norm_backward, scalar_t), a, g.rows(), parts);
    partials.sum_into(sums.data_ptr<scalar_t>());
  });
  return {dx, sums[0].narrow(0, 0, g.channels).clone(), sums[1].narrow(0, 0, g.channels).clone()};
}

}  // namespace

TORCH_LIBRARY_IMPL(asid_fast, CPU, m) {
  m.impl("layer_norm_fwd", &layer_norm_fwd);
  m.impl("layer_norm_bwd", &layer_norm_bwd);
}

#ifdef ASID_FAST_WITH_CUDA
TORCH_LIBRARY_IMPL(asid_fast, CUDA, m) {
  m.impl("layer_norm_fwd", &layer_norm_fwd);
  m.impl("layer_norm_bwd", &layer_norm_bwd);
}
#endif

}  // namespace asid
