// CUDA registrations of the fused ops (schemas in cpu/fused_op_schemas.cpp): the same checks as
// the CPU wrappers, output and partial-sum allocation, the current stream, and the torch-free
// launchers of fused_kernels.cu. Built only with CUDA (setup.py compiles csrc/cuda/*.cpp then).
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <torch/library.h>

#include "../cpu/fused_op_inputs.h"
#include "../op_inputs.h"
#include "fused_launchers.h"

namespace asid {
namespace cuda {
namespace {

// Kernel storage type T and accumulation type S of an ATen scalar type.
template <typename scalar_t>
struct Types {
  using T = scalar_t;
  using S = scalar_t;
};
template <>
struct Types<at::Half> {
  using T = __half;
  using S = float;
};
template <>
struct Types<at::BFloat16> {
  using T = __nv_bfloat16;
  using S = float;
};

at::ScalarType acc_dtype(at::ScalarType t) {
  return t == at::kDouble ? at::kDouble : at::kFloat;
}

void check_launch(cudaError_t err) {
  TORCH_CHECK(err == cudaSuccess, "asid_fast CUDA kernel launch failed: ", cudaGetErrorString(err));
}

template <typename P>
P* ptr(const at::Tensor& t) {
  return t.defined() ? static_cast<P*>(t.data_ptr()) : nullptr;
}

#define ASID_DISPATCH(dtype, name, ...) \
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, dtype, name, __VA_ARGS__)

std::tuple<at::Tensor, at::Tensor, at::Tensor> layer_norm_fwd(const at::Tensor& x,
                                                              const at::Tensor& weight,
                                                              const at::Tensor& bias,
                                                              double eps) {
  const RowGrid g = check_layer_norm_fwd(x, weight, bias);
  const c10::cuda::CUDAGuard guard(x.device());
  const at::Tensor w = weight.contiguous(), b = bias.contiguous();
  at::Tensor y = at::empty(x.sizes(), x.options());
  at::Tensor mean = at::empty(x.sizes().slice(0, 3), x.options().dtype(acc_dtype(x.scalar_type())));
  at::Tensor rstd = at::empty_like(mean);
  ASID_DISPATCH(x.scalar_type(), "fused_layer_norm_fwd", [&] {
    using T = typename Types<scalar_t>::T;
    using S = typename Types<scalar_t>::S;
    LayerNormFwdArgs<T, S> a;
    a.grid = g;
    a.ld = g.channels;
    a.x = map_view<const T>(x);
    a.weight = ptr<const T>(w);
    a.bias = ptr<const T>(b);
    a.eps = eps;
    a.y = ptr<T>(y);
    a.mean = ptr<S>(mean);
    a.rstd = ptr<S>(rstd);
    check_launch(layer_norm_forward(a, at::cuda::getCurrentCUDAStream().stream()));
  });
  return {y, mean, rstd};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> layer_norm_bwd(const at::Tensor& grad_y,
                                                              const at::Tensor& x,
                                                              const at::Tensor& weight,
                                                              const at::Tensor& mean,
                                                              const at::Tensor& rstd) {
  const RowGrid g =
      check_layer_norm_bwd(grad_y, x, weight, mean, rstd, acc_dtype(x.scalar_type()));
  const c10::cuda::CUDAGuard guard(x.device());
  const at::Tensor w = weight.contiguous();
  at::Tensor dx = at::empty(x.sizes(), x.options());
  at::Tensor partials = at::empty({2, layer_norm_bwd_blocks(g), g.channels},
                                  x.options().dtype(acc_dtype(x.scalar_type())));
  ASID_DISPATCH(x.scalar_type(), "fused_layer_norm_bwd", [&] {
    using T = typename Types<scalar_t>::T;
    using S = typename Types<scalar_t>::S;
    LayerNormBwdArgs<T, S> a;
    a.grid = g;
    a.ld = g.channels;
    a.x = map_view<const T>(x);
    a.grad_y = ptr<const T>(grad_y);
    a.weight = ptr<const T>(w);
    a.mean = ptr<const S>(mean);
    a.rstd = ptr<const S>(rstd);
    a.dx = ptr<T>(dx);
    a.dweight = ptr<S>(partials[0]);
    a.dbias = ptr<S>(partials[1]);
    check_launch(layer_norm_backward(a, at::cuda::getCurrentCUDAStream().stream()));
  });
  const at::Tensor sums = partials.sum(1).to(weight.scalar_type());
  return {dx, sums[0].clone(), sums[1].clone()};
}

at::Tensor contiguous_bias(const std::optional<at::Tensor>& bias) {
  return bias.has_value() && bias->defined() ? bias->contiguous() : at::Tensor();
}

template <typename T>
DwconvFwdArgs<T> dwconv_args(const RowGrid& g, const at::Tensor& x, const at::Tensor& taps,
                             const at::Tensor& bias, Epilogue e) {
  DwconvFwdArgs<T> a;
  a.grid = g;
  a.ld = g.channels;
  a.x = map_view<const T>(x);
  a.taps = ptr<const T>(taps);
  a.bias = ptr<const T>(bias);
  a.epilogue = e;
  return a;
}

at::Tensor dwconv_fwd(const at::Tensor& x, const at::Tensor& weight,
                      const std::optional<at::Tensor>& bias, std::string epilogue) {
  const Epilogue e = parse_epilogue(epilogue, x.size(3));
  const RowGrid g = check_dwconv(x, weight, bias, e, at::Tensor());
  const c10::cuda::CUDAGuard guard(x.device());
  const at::Tensor taps = dwconv_taps(weight, false, g.channels), b = contiguous_bias(bias);
  at::Tensor out = at::empty({g.batch, g.height, g.width, epilogue_channels(e, g.channels)},
                             x.options());
  ASID_DISPATCH(x.scalar_type(), "fused_dwconv3x3_fwd", [&] {
    using T = typename Types<scalar_t>::T;
    using S = typename Types<scalar_t>::S;
    DwconvFwdArgs<T> a = dwconv_args<T>(g, x, taps, b, e);
    a.out = ptr<T>(out);
    check_launch(dwconv_forward<T, S>(a, at::cuda::getCurrentCUDAStream().stream()));
  });
  return out;
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> dwconv_bwd(
    const at::Tensor& grad_out, const at::Tensor& x, const at::Tensor& weight,
    const std::optional<at::Tensor>& bias, std::string epilogue) {
  const Epilogue e = parse_epilogue(epilogue, x.size(3));
  const RowGrid g = check_dwconv(x, weight, bias, e, grad_out);
  const c10::cuda::CUDAGuard guard(x.device());
  const int64_t c = g.channels, blocks = dwconv_bwd_blocks(g);
  const at::Tensor taps = dwconv_taps(weight, false, c), flipped = dwconv_taps(weight, true, c);
  const at::Tensor b = contiguous_bias(bias);
  const at::Tensor grad_pre = e == Epilogue::kNone ? grad_out : at::empty(x.sizes(), x.options());
  at::Tensor dx = at::empty(x.sizes(), x.options());
  at::Tensor partials = at::empty({blocks, 10, c}, x.options().dtype(acc_dtype(x.scalar_type())));
  ASID_DISPATCH(x.scalar_type(), "fused_dwconv3x3_bwd", [&] {
    using T = typename Types<scalar_t>::T;
    using S = typename Types<scalar_t>::S;
    DwconvBwdArgs<T, S> a;
    a.fwd = dwconv_args<T>(g, x, taps, b, e);
    a.grad_out = ptr<const T>(grad_out);
    a.grad_pre = ptr<T>(grad_pre);
    a.flipped_taps = ptr<const T>(flipped);
    a.dx = ptr<T>(dx);
    a.dtaps = ptr<S>(partials);  // (blocks, 9, C) then (blocks, C): see dbias below
    a.dbias = ptr<S>(partials) + blocks * 9 * c;
    check_launch(dwconv_backward(a, at::cuda::getCurrentCUDAStream().stream()));
  });
  const at::Tensor flat = partials.view({-1});
  const at::Tensor dtaps = flat.narrow(0, 0, blocks * 9 * c).view({blocks, 9, c}).sum(0);
  const at::Tensor dbias = flat.narrow(0, blocks * 9 * c, blocks * c).view({blocks, c}).sum(0);
  const at::Tensor dweight = dtaps.t().contiguous().view({c, 1, 3, 3});
  return {dx, dweight.to(weight.scalar_type()), dbias.to(weight.scalar_type())};
}

}  // namespace

TORCH_LIBRARY_IMPL(asid_fast, CUDA, m) {
  m.impl("fused_layer_norm_fwd", &layer_norm_fwd);
  m.impl("fused_layer_norm_bwd", &layer_norm_bwd);
  m.impl("fused_dwconv3x3_fwd", &dwconv_fwd);
  m.impl("fused_dwconv3x3_bwd", &dwconv_bwd);
}

}  // namespace cuda
}  // namespace asid
