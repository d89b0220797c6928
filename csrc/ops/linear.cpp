// Entry of linear_fwd (schema: asid_fast/ops/linear.py) for CPU tensors: argument checks, the
// transposed and padded weight, the output, the kernel arguments and the launch
// (cpu/kernels/linear.h). Its autograd: ops/autograd.cpp.
#include <ATen/Dispatch.h>
#include <torch/library.h>

#include "cpu/parallel.h"
#include "ops/checks.h"
#include "ops/output_cache.h"
#include "ops/linear.h"

namespace asid {
namespace {

constexpr int64_t kImageRowsPerPart = 4;

at::Tensor linear_fwd(at::TensorList xs_in, const at::Tensor& weight,
                      const std::optional<at::Tensor>& bias,
                      const std::optional<at::Tensor>& residual,
                      const std::optional<at::Tensor>& gate) {
  const std::vector<at::Tensor> xs = xs_in.vec();
  const RowGrid g = check_linear(xs, weight, bias, residual, gate);
  const int64_t ld_n = padded(g.channels), rows = g.batch * g.height;
  // W^T, (K, ld_n) or per image (B, K, ld_n), zero padded
  const at::Tensor w_t = at::constant_pad_nd(weight.transpose(-1, -2), {0, ld_n - g.channels})
                             .contiguous();
  const at::Tensor b = padded_vector(bias, ld_n);
  at::Tensor out = empty_output({g.batch, g.height, g.width, g.channels}, xs[0].options());
  AT_DISPATCH_FLOATING_TYPES(xs[0].scalar_type(), "linear_fwd", [&] {
    LinearArgs<scalar_t> a;
    a.grid = g;
    a.inputs = static_cast<int>(xs.size());
    for (int i = 0; i < a.inputs; ++i) {
      a.x[i] = map_view<const scalar_t>(xs[i]);
      a.k[i] = xs[i].size(3);
    }
    a.w_t = w_t.data_ptr<scalar_t>();
    a.ld_n = ld_n;
    a.w_image_stride = weight.dim() == 3 ? w_t.stride(0) : 0;
    a.bias = data_or_null<const scalar_t>(b);
    if (residual.has_value()) a.residual = map_view<const scalar_t>(*residual);
    if (gate.has_value()) a.gate = map_view<const scalar_t>(*gate);
    a.out = out.data_ptr<scalar_t>();
    cpu::run_kernel(ASID_CPU_KERNEL(linear, scalar_t), a, rows,
                    cpu::balanced_parts(rows, kImageRowsPerPart));
  });
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(asid_fast, CPU, m) { m.impl("linear_fwd", &linear_fwd); }

}  // namespace asid
