// Entries of linear_fwd and linear_bwd (schemas: asid_fast/ops/linear.py) for CPU tensors:
// argument checks, the padded weight copies, outputs and partial sums, the kernel arguments and
// the launch (cpu/kernels/linear.h). The forward's autograd (ops/autograd.cpp) calls linear_bwd.
#include <ATen/Dispatch.h>
#include <ATen/ops/cat.h>
#include <ATen/ops/constant_pad_nd.h>
#include <torch/library.h>

#include "cpu/parallel.h"
#include "ops/bf16_products.h"
#include "ops/checks.h"
#include "ops/output_cache.h"
#include "ops/linear.h"

namespace asid {
namespace {

constexpr int64_t kImageRowsPerPart = 4;
// The backward's parts (fixed by the row count, for sums that do not depend on the thread count);
// with per-image weights each part holds a weight gradient per image, so there are fewer parts.
constexpr int64_t kBackwardRowsPerPart = 16;
constexpr int64_t kBackwardPerImageParts = 8;

// The forward's kernel arguments, less out; w_t (W^T, (K, ld_n) or per image (B, K, ld_n), zero
// padded; undefined where nothing reads it) and b (padded bias or undefined) must outlive them.
template <typename T>
LinearArgs<T> linear_args(const RowGrid& g, const std::vector<at::Tensor>& xs,
                          const at::Tensor& weight, int64_t ld_n, const at::Tensor& w_t,
                          const at::Tensor& b, const std::optional<at::Tensor>& residual,
                          const std::optional<at::Tensor>& gate) {
  LinearArgs<T> a;
  a.grid = g;
  a.inputs = static_cast<int>(xs.size());
  for (int i = 0; i < a.inputs; ++i) {
    a.x[i] = map_view<const T>(xs[i]);
    a.k[i] = xs[i].size(3);
  }
  a.w_t = data_or_null<const T>(w_t);
  a.ld_n = ld_n;
  a.w_image_stride = weight.dim() == 3 && w_t.defined() ? w_t.stride(0) : 0;
  a.bias = data_or_null<const T>(b);
  if (residual.has_value()) a.residual = map_view<const T>(*residual);
  if (gate.has_value()) a.gate = map_view<const T>(*gate);
  return a;
}

// W^T, (K, ld_n) or per image (B, K, ld_n), zero padded.
at::Tensor transposed_weight(const at::Tensor& weight, int64_t ld_n) {
  return padded_rows(weight, ld_n, /*transposed=*/true);
}

at::Tensor linear_fwd(at::TensorList xs_in, const at::Tensor& weight,
                      const std::optional<at::Tensor>& bias,
                      const std::optional<at::Tensor>& residual,
                      const std::optional<at::Tensor>& gate) {
  const std::vector<at::Tensor> xs = xs_in.vec();
  const RowGrid g = check_linear(xs, weight, bias, residual, gate);
  const int64_t ld_n = padded(g.channels), rows = g.batch * g.height;
  const at::Tensor w_t = transposed_weight(weight, ld_n);
  const at::Tensor b = padded_vector(bias, ld_n);
  at::Tensor out = empty_output({g.batch, g.height, g.width, g.channels}, xs[0].options());
  at::Tensor w_pairs;  // the products in bf16 where torch allows it: each input's rows, stacked
  if (bf16_products(xs[0])) {
    std::vector<at::Tensor> blocks;
    int64_t row = 0;
    for (const at::Tensor& x : xs) {
      blocks.push_back(bf16_pairs(w_t.narrow(-2, row, x.size(3))));
      row += x.size(3);
    }
    w_pairs = at::cat(blocks, -2);
  }
  AT_DISPATCH_FLOATING_TYPES(xs[0].scalar_type(), "linear_fwd", [&] {
    LinearArgs<scalar_t> a = linear_args<scalar_t>(g, xs, weight, ld_n, w_t, b, residual, gate);
    a.out = out.data_ptr<scalar_t>();
    a.w_pairs = data_or_null<const uint32_t>(w_pairs);
    a.w_pairs_image_stride = w_pairs.defined() && w_pairs.dim() == 3 ? w_pairs.stride(0) : 0;
    cpu::run_kernel(ASID_CPU_KERNEL(linear, scalar_t), a, rows,
                    cpu::balanced_parts(rows, kImageRowsPerPart));
  });
  return out;
}

// [dx_0, ..., dx_{n-1}, dweight, dbias, dresidual, dgate] (dresidual and dgate empty when absent)
std::vector<at::Tensor> linear_bwd(const at::Tensor& grad, at::TensorList xs_in,
                                   const at::Tensor& weight, const std::optional<at::Tensor>& bias,
                                   const std::optional<at::Tensor>& residual,
                                   const std::optional<at::Tensor>& gate) {
  const std::vector<at::Tensor> xs = xs_in.vec();
  const RowGrid g = check_linear(xs, weight, bias, residual, gate);
  const int64_t n = g.channels, ld_n = padded(n), rows = g.batch * g.height;
  TORCH_CHECK(grad.sizes() == at::IntArrayRef({g.batch, g.height, g.width, n}),
              "grad must be (", g.batch, ", ", g.height, ", ", g.width, ", ", n, "), got ",
              grad.sizes());
  check_like("grad", grad, "xs[0]", xs[0], /*shape=*/false);
  const bool per_image = weight.dim() == 3, gated = gate.has_value();
  // W with each input's columns padded to whole vectors: (N, ld_w) or (B, N, ld_w)
  std::vector<at::Tensor> blocks;
  std::vector<int64_t> w_col;
  int64_t k0 = 0, ld_w = 0;
  for (const at::Tensor& x : xs) {
    const int64_t k = x.size(3);
    blocks.push_back(at::constant_pad_nd(weight.narrow(-1, k0, k), {0, padded(k) - k}));
    w_col.push_back(ld_w);
    k0 += k;
    ld_w += padded(k);
  }
  const at::Tensor w_rows = at::cat(blocks, -1).contiguous();
  // the forward's W^T and bias: read only with a gate (pre recomputed)
  const at::Tensor w_t = gated ? transposed_weight(weight, ld_n) : at::Tensor();
  const at::Tensor b = gated ? padded_vector(bias, ld_n) : at::Tensor();
  const LinearGradLayout layout(n, ld_n, ld_w, per_image ? g.batch : 1);
  const int64_t parts = cpu::fixed_parts((rows + kBackwardRowsPerPart - 1) / kBackwardRowsPerPart,
                                         per_image ? kBackwardPerImageParts : 64);
  const at::Tensor go = grad.contiguous();
  std::vector<at::Tensor> dxs;
  for (const at::Tensor& x : xs) dxs.push_back(empty_output(x.sizes(), x.options()));
  const auto map_like_grad = [&] { return empty_output(go.sizes(), go.options()); };
  at::Tensor d_pre = gated && residual.has_value() ? map_like_grad() : go.new_empty({0});
  at::Tensor d_gate = gated ? map_like_grad() : go.new_empty({0});
  at::Tensor sums = empty_output({layout.size}, go.options());
  AT_DISPATCH_FLOATING_TYPES(go.scalar_type(), "linear_bwd", [&] {
    LinearBwdArgs<scalar_t> a;
    a.fwd = linear_args<scalar_t>(g, xs, weight, ld_n, w_t, b, residual, gate);
    a.grad = go.data_ptr<scalar_t>();
    a.w_rows = w_rows.data_ptr<scalar_t>();
    a.ld_w = ld_w;
    a.w_rows_image_stride = per_image ? w_rows.stride(0) : 0;
    for (size_t i = 0; i < xs.size(); ++i) {
      a.w_col[i] = w_col[i];
      a.dx[i] = dxs[i].data_ptr<scalar_t>();
    }
    a.d_pre = d_pre.numel() ? d_pre.data_ptr<scalar_t>() : nullptr;
    a.d_gate = gated ? d_gate.data_ptr<scalar_t>() : nullptr;
    const cpu::PartialSums<scalar_t> partials(parts, layout.size);
    a.partials = partials.data();
    cpu::run_kernel(ASID_CPU_KERNEL(linear_backward, scalar_t), a, rows, parts);
    partials.sum_into(sums.data_ptr<scalar_t>());
  });
  // dW from the padded layout back to weight's
  std::vector<int64_t> dw_shape = {n, ld_w};
  if (per_image) dw_shape.insert(dw_shape.begin(), g.batch);
  const at::Tensor dw_padded = sums.narrow(0, layout.w, layout.size - layout.w).view(dw_shape);
  std::vector<at::Tensor> dw_blocks;
  for (size_t i = 0; i < xs.size(); ++i)
    dw_blocks.push_back(dw_padded.narrow(-1, w_col[i], xs[i].size(3)));
  std::vector<at::Tensor> out = dxs;
  out.insert(out.end(),
             {at::cat(dw_blocks, -1), sums.narrow(0, layout.bias, n).clone(), d_pre, d_gate});
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(asid_fast, CPU, m) {
  m.impl("linear_fwd", &linear_fwd);
  m.impl("linear_bwd", &linear_bwd);
}

}  // namespace asid
