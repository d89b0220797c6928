// Entries of depthwise_conv3x3_{fwd,bwd} (schemas: asid_fast/ops/depthwise_conv3x3.py) for CPU
// and CUDA tensors: argument checks, tap-major (padded on the CPU) weight copies, outputs and
// partial sums, the kernel arguments, and the launch on the tensors' device
// (cpu/kernels/depthwise_conv3x3.h, cuda/depthwise_conv3x3.cu). Their autograd: ops/autograd.cpp.
#include <ATen/Dispatch.h>
#include <torch/library.h>

#include "cpu/parallel.h"
#include "ops/checks.h"
#include "ops/output_cache.h"
#include "ops/depthwise_conv3x3.h"
#ifdef ASID_FAST_WITH_CUDA
#include "cuda/binding_utils.h"
#endif

namespace asid {
namespace {

constexpr int64_t kImageRowsPerPart = 4;  // forward
constexpr int64_t kBackwardRowsPerPart = 16;  // each part recomputes grad_pre of 2 more rows

template <typename T>
DwconvFwdArgs<T> fwd_args(const RowGrid& g, int64_t ld, const at::Tensor& x,
                          const at::Tensor& taps, const at::Tensor& bias, Epilogue e,
                          const at::Tensor& out) {
  DwconvFwdArgs<T> a;
  a.grid = g;
  a.ld = ld;
  a.x = map_view<const T>(x);
  a.taps = data_or_null<const T>(taps);
  a.bias = data_or_null<const T>(bias);
  a.epilogue = e;
  a.out = data_or_null<T>(out);
  return a;
}

at::Tensor dwconv_fwd(const at::Tensor& x, const at::Tensor& weight,
                      const std::optional<at::Tensor>& bias, std::string epilogue) {
  const Epilogue e = parse_epilogue(epilogue, x.size(3));
  const RowGrid g = check_dwconv(x, weight, bias, e, at::Tensor());
  at::Tensor out = empty_output({g.batch, g.height, g.width, epilogue_channels(e, g.channels)},
                             x.options());
  if (x.is_cuda()) {
#ifdef ASID_FAST_WITH_CUDA
    const c10::cuda::CUDAGuard guard(x.device());
    const at::Tensor taps = dwconv_taps(weight, false, g.channels);
    const at::Tensor b = contiguous_or_undefined(bias);
    cuda::with_cuda_types(x.scalar_type(), "depthwise_conv3x3_fwd", [&](auto t, auto s) {
      using T = decltype(t);
      using S = decltype(s);
      cuda::check_launch(cuda::dwconv_forward<T, S>(fwd_args<T>(g, g.channels, x, taps, b, e, out),
                                                    cuda::current_stream()),
                         "depthwise_conv3x3_fwd");
    });
#endif
    return out;
  }
  const int64_t ld = padded(g.channels), rows = g.batch * g.height;
  const at::Tensor taps = dwconv_taps(weight, false, ld), b = padded_vector(bias, ld);
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "depthwise_conv3x3_fwd", [&] {
    cpu::run_kernel(ASID_CPU_KERNEL(dwconv_forward, scalar_t),
                    fwd_args<scalar_t>(g, ld, x, taps, b, e, out), rows,
                    cpu::balanced_parts(rows, kImageRowsPerPart));
  });
  return out;
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> dwconv_bwd(
    const at::Tensor& grad_out, const at::Tensor& x, const at::Tensor& weight,
    const std::optional<at::Tensor>& bias, std::string epilogue) {
  const Epilogue e = parse_epilogue(epilogue, x.size(3));
  const RowGrid g = check_dwconv(x, weight, bias, e, grad_out);
  const int64_t c = g.channels;
  at::Tensor dx = empty_output(x.sizes(), x.options());
  if (x.is_cuda()) {
#ifdef ASID_FAST_WITH_CUDA
    const c10::cuda::CUDAGuard guard(x.device());
    const int64_t blocks = cuda::dwconv_bwd_blocks(g);
    const at::Tensor taps = dwconv_taps(weight, false, c), flipped = dwconv_taps(weight, true, c);
    const at::Tensor b = contiguous_or_undefined(bias);
    const at::Tensor grad_pre =
        e == Epilogue::kNone ? grad_out : empty_output(x.sizes(), x.options());
    at::Tensor partials =
        empty_output({blocks, 10, c}, x.options().dtype(cuda::acc_dtype(x.scalar_type())));
    cuda::with_cuda_types(x.scalar_type(), "depthwise_conv3x3_bwd", [&](auto t, auto s) {
      using T = decltype(t);
      using S = decltype(s);
      DwconvBwdArgs<T, S> a;
      a.fwd = fwd_args<T>(g, c, x, taps, b, e, at::Tensor());
      a.grad_out = data_or_null<const T>(grad_out);
      a.grad_pre = data_or_null<T>(grad_pre);
      a.flipped_taps = data_or_null<const T>(flipped);
      a.dx = data_or_null<T>(dx);
      a.dtaps = data_or_null<S>(partials);  // (blocks, 9, C) then (blocks, C): dbias below
      a.dbias = data_or_null<S>(partials) + blocks * 9 * c;
      cuda::check_launch(cuda::dwconv_backward(a, cuda::current_stream()),
                         "depthwise_conv3x3_bwd");
    });
    const at::Tensor flat = partials.view({-1});
    const at::Tensor dtaps = flat.narrow(0, 0, blocks * 9 * c).view({blocks, 9, c}).sum(0);
    const at::Tensor dbias = flat.narrow(0, blocks * 9 * c, blocks * c).view({blocks, c}).sum(0);
    const at::Tensor dweight = dtaps.t().contiguous().view({c, 1, 3, 3});
    return {dx, dweight.to(weight.scalar_type()), dbias.to(weight.scalar_type())};
#endif
  }
  const int64_t ld = padded(c), rows = g.batch * g.height;
  const int64_t parts = cpu::fixed_parts((rows + kBackwardRowsPerPart - 1) / kBackwardRowsPerPart);
  const at::Tensor taps = dwconv_taps(weight, false, ld), flipped = dwconv_taps(weight, true, ld);
  const at::Tensor b = padded_vector(bias, ld);
  at::Tensor sums = empty_output({10, ld}, x.options());  // 9 taps, then the bias
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "depthwise_conv3x3_bwd", [&] {
    DwconvBwdArgs<scalar_t> a;
    a.fwd = fwd_args<scalar_t>(g, ld, x, taps, b, e, at::Tensor());
    a.grad_out = grad_out.data_ptr<scalar_t>();
    a.flipped_taps = flipped.data_ptr<scalar_t>();
    a.dx = dx.data_ptr<scalar_t>();
    const cpu::PartialSums<scalar_t> partials(parts, 10 * ld);
    a.dtaps = partials.data();
    a.dbias = partials.data() + 9 * ld;
    cpu::run_kernel(ASID_CPU_KERNEL(dwconv_backward, scalar_t), a, rows, parts);
    partials.sum_into(sums.data_ptr<scalar_t>());
  });
  const at::Tensor used = sums.narrow(1, 0, c);
  const at::Tensor dweight = used.narrow(0, 0, 9).t().contiguous().view({c, 1, 3, 3});
  return {dx, dweight, used[9].clone()};
}

}  // namespace

TORCH_LIBRARY_IMPL(asid_fast, CPU, m) {
  m.impl("depthwise_conv3x3_fwd", &dwconv_fwd);
  m.impl("depthwise_conv3x3_bwd", &dwconv_bwd);
}

#ifdef ASID_FAST_WITH_CUDA
TORCH_LIBRARY_IMPL(asid_fast, CUDA, m) {
  m.impl("depthwise_conv3x3_fwd", &dwconv_fwd);
  m.impl("depthwise_conv3x3_bwd", &dwconv_bwd);
}
#endif

}  // namespace asid
