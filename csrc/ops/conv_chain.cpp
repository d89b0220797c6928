// Entries of conv_chain_fwd and conv_chain_bwd (schemas: asid_fast/ops/conv_chain.py) for CPU
// tensors: argument checks, transposed and padded parameter copies, outputs and partial sums, the
// kernel arguments and the launch (cpu/kernels/conv_chain.h). The forward's autograd is the
// Python formula (conv_chain_bwd).
#include <ATen/Dispatch.h>
#include <torch/library.h>

#include "cpu/parallel.h"
#include "ops/bf16_products.h"
#include "ops/checks.h"
#include "ops/output_cache.h"
#include "ops/conv_chain.h"

namespace asid {
namespace {

// A part projects the two image rows around it once more, except where its worker took the part
// before it (work_queue.h): fine parts (at least 4 rows, up to 16 per thread) for balance.
constexpr int64_t kMinRowsPerPart = 4, kPartsPerThread = 16;
// A part of the backward recomputes two more rows of the depthwise gradient and four of the
// projection, except at an image's edge. So its parts are whole images, each cut into equal
// slices (no more than one per 16 rows) only as far as needed for kBackwardParts parts in all: a
// function of the shape alone, so that the sums do not depend on the thread count.
constexpr int64_t kBackwardParts = 16, kBackwardRowsPerPart = 16;

int64_t backward_parts(const RowGrid& g) {
  const int64_t slices = std::min((g.height + kBackwardRowsPerPart - 1) / kBackwardRowsPerPart,
                                  (kBackwardParts + g.batch - 1) / g.batch);
  return cpu::fixed_parts(g.batch * std::max<int64_t>(slices, 1));
}

// The checked chain, its parameters as the kernels read them (undefined where absent): LayerNorm
// vectors (padded(K)), W_in^T (K, ld_in), b_in, the taps (9, ld_in), b_dw, W_out^T (n_mid, ld_out),
// zero padded.
struct Chain {
  RowGrid grid;
  Epilogue epilogue;
  int64_t n_in, n_mid, ld_in, ld_out;
  double eps;
  bool gelu_in;
  at::Tensor nw, nb, win, bin, taps, bdw, wout;
};

Chain checked_chain(const at::Tensor& x, const std::optional<at::Tensor>& norm_weight,
                    const std::optional<at::Tensor>& norm_bias, double eps, const at::Tensor& w_in,
                    const std::optional<at::Tensor>& b_in, bool gelu_in,
                    const std::optional<at::Tensor>& w_dw, const std::optional<at::Tensor>& b_dw,
                    const std::string& epilogue, const std::optional<at::Tensor>& w_out) {
  Chain c;
  c.n_in = w_in.size(0);
  c.epilogue = parse_epilogue(epilogue, c.n_in);
  c.grid = check_conv_chain(x, norm_weight, norm_bias, w_in, b_in, w_dw, b_dw, c.epilogue, w_out);
  c.n_mid = epilogue_channels(c.epilogue, c.n_in);
  c.ld_in = padded(c.n_in);
  c.ld_out = padded(c.grid.channels);
  c.eps = eps;
  c.gelu_in = gelu_in;
  c.nw = padded_vector(norm_weight, c.ld_out);
  c.nb = padded_vector(norm_bias, c.ld_out);
  c.win = padded_rows(w_in, c.ld_in, /*transposed=*/true);
  c.bin = padded_vector(b_in, c.ld_in);
  c.taps = w_dw.has_value() ? dwconv_taps(*w_dw, false, c.ld_in) : at::Tensor();
  c.bdw = padded_vector(b_dw, c.ld_in);
  c.wout = w_out.has_value() ? padded_rows(*w_out, c.ld_out, /*transposed=*/true) : at::Tensor();
  return c;
}

template <typename T>
ConvChainArgs<T> chain_args(const Chain& c, const at::Tensor& x) {
  ConvChainArgs<T> a;
  a.grid = c.grid;
  a.x = map_view<const T>(x);
  a.norm_weight = data_or_null<const T>(c.nw);
  a.norm_bias = data_or_null<const T>(c.nb);
  a.eps = c.eps;
  a.w_in = c.win.data_ptr<T>();
  a.n_in = c.n_in;
  a.ld_in = c.ld_in;
  a.b_in = data_or_null<const T>(c.bin);
  a.gelu_in = c.gelu_in;
  a.taps = data_or_null<const T>(c.taps);
  a.b_dw = data_or_null<const T>(c.bdw);
  a.epilogue = c.epilogue;
  a.w_out = data_or_null<const T>(c.wout);
  a.ld_out = c.ld_out;
  return a;
}

at::Tensor conv_chain_fwd(const at::Tensor& x, const std::optional<at::Tensor>& norm_weight,
                          const std::optional<at::Tensor>& norm_bias, double eps,
                          const at::Tensor& w_in, const std::optional<at::Tensor>& b_in,
                          bool gelu_in, const std::optional<at::Tensor>& w_dw,
                          const std::optional<at::Tensor>& b_dw, std::string epilogue,
                          const std::optional<at::Tensor>& w_out) {
  const Chain c = checked_chain(x, norm_weight, norm_bias, eps, w_in, b_in, gelu_in, w_dw, b_dw,
                                epilogue, w_out);
  const RowGrid& g = c.grid;
  const int64_t rows = g.batch * g.height;
  at::Tensor out = empty_output(
      {g.batch, g.height, g.width, c.wout.defined() ? g.channels : c.n_mid}, x.options());
  at::Tensor w_in_pairs, w_out_pairs;  // the forward's products in bf16 where torch allows it
  if (bf16_products(x)) {
    w_in_pairs = bf16_pairs(c.win);
    if (c.wout.defined()) w_out_pairs = bf16_pairs(c.wout);
  }
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "conv_chain_fwd", [&] {
    ConvChainArgs<scalar_t> a = chain_args<scalar_t>(c, x);
    a.out = out.data_ptr<scalar_t>();
    a.w_in_pairs = data_or_null<const uint32_t>(w_in_pairs);
    a.w_out_pairs = data_or_null<const uint32_t>(w_out_pairs);
    cpu::run_kernel(ASID_CPU_KERNEL(conv_chain, scalar_t), a, rows,
                    cpu::balanced_parts(rows, kMinRowsPerPart, kPartsPerThread));
  });
  return out;
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor,
           at::Tensor>
conv_chain_bwd(const at::Tensor& grad_out, const at::Tensor& x,
               const std::optional<at::Tensor>& norm_weight,
               const std::optional<at::Tensor>& norm_bias, double eps, const at::Tensor& w_in,
               const std::optional<at::Tensor>& b_in, bool gelu_in,
               const std::optional<at::Tensor>& w_dw, const std::optional<at::Tensor>& b_dw,
               std::string epilogue, const std::optional<at::Tensor>& w_out) {
  const Chain c = checked_chain(x, norm_weight, norm_bias, eps, w_in, b_in, gelu_in, w_dw, b_dw,
                                epilogue, w_out);
  const RowGrid& g = c.grid;
  const int64_t k = g.channels, n_in = c.n_in, n_mid = c.n_mid;
  const int64_t k_out = w_out.has_value() ? k : n_mid;
  TORCH_CHECK(grad_out.dim() == 4 && grad_out.size(0) == g.batch && grad_out.size(1) == g.height &&
                  grad_out.size(2) == g.width && grad_out.size(3) == k_out,
              "grad_out must be (", g.batch, ", ", g.height, ", ", g.width, ", ", k_out,
              "), got ", grad_out.sizes());
  check_like("grad_out", grad_out, "x", x, /*shape=*/false);
  const int64_t ld_k = c.ld_out, ld_in = c.ld_in, ld_mid = padded(n_mid);
  const int64_t rows = g.batch * g.height;
  const int64_t parts = backward_parts(g);
  const at::Tensor go = grad_out.contiguous();
  const at::Tensor w_in_rows = padded_rows(w_in, ld_k);
  const at::Tensor flipped = w_dw.has_value() ? dwconv_taps(*w_dw, true, ld_in) : at::Tensor();
  const at::Tensor w_out_rows = w_out.has_value() ? padded_rows(*w_out, ld_mid) : at::Tensor();
  const ChainGradLayout layout(k, ld_k, n_in, ld_in, ld_mid);
  at::Tensor dx = empty_output(x.sizes(), x.options());
  at::Tensor sums = empty_output({layout.size}, x.options());
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "conv_chain_bwd", [&] {
    ConvChainBwdArgs<scalar_t> a;
    a.fwd = chain_args<scalar_t>(c, x);
    a.grad_out = go.data_ptr<scalar_t>();
    a.w_in_rows = w_in_rows.data_ptr<scalar_t>();
    a.w_out_rows = data_or_null<const scalar_t>(w_out_rows);
    a.flipped_taps = data_or_null<const scalar_t>(flipped);
    a.ld_k = ld_k;
    a.ld_mid = ld_mid;
    a.dx = dx.data_ptr<scalar_t>();
    const cpu::PartialSums<scalar_t> partials(parts, layout.size);
    a.partials = partials.data();
    cpu::run_kernel(ASID_CPU_KERNEL(conv_chain_backward, scalar_t), a, rows, parts);
    partials.sum_into(sums.data_ptr<scalar_t>());
  });
  const auto block = [&](int64_t offset, int64_t size) { return sums.narrow(0, offset, size); };
  const auto matrix = [&](int64_t offset, int64_t r, int64_t ld, int64_t cols) {
    return block(offset, r * ld).view({r, ld}).narrow(1, 0, cols);
  };
  const auto none = [&] { return x.new_empty({0}); };  // a distinct tensor per absent gradient
  const bool norm = norm_weight.has_value();
  return {dx,
          norm ? block(layout.norm_weight, k).clone() : none(),
          norm ? block(layout.norm_bias, k).clone() : none(),
          matrix(layout.w_in, n_in, ld_k, k).contiguous(),
          block(layout.b_in, n_in).clone(),
          w_dw.has_value()
              ? matrix(layout.taps, 9, ld_in, n_in).t().contiguous().view({n_in, 1, 3, 3})
              : none(),
          w_dw.has_value() ? block(layout.b_dw, n_in).clone() : none(),
          w_out.has_value() ? matrix(layout.w_out, k, ld_mid, n_mid).contiguous() : none()};
}

}  // namespace

TORCH_LIBRARY_IMPL(asid_fast, CPU, m) {
  m.impl("conv_chain_fwd", &conv_chain_fwd);
  m.impl("conv_chain_bwd", &conv_chain_bwd);
}

}  // namespace asid
