// Entry of conv_chain_fwd (schema: asid_fast/ops/conv_chain.py) for CPU tensors: argument
// checks, transposed and padded parameter copies, the output, the kernel arguments and the launch
// (cpu/kernels/conv_chain.h). Its autograd is the Python formula (recomputation).
#include <ATen/Dispatch.h>
#include <torch/library.h>

#include "cpu/parallel.h"
#include "ops/checks.h"
#include "ops/output_cache.h"
#include "ops/conv_chain.h"

namespace asid {
namespace {

// Each part projects the two image rows around it once more: parts of at least 8 rows.
constexpr int64_t kMinRowsPerPart = 8;

at::Tensor conv_chain_fwd(const at::Tensor& x, const std::optional<at::Tensor>& norm_weight,
                          const std::optional<at::Tensor>& norm_bias, double eps,
                          const at::Tensor& w_in, const std::optional<at::Tensor>& b_in,
                          bool gelu_in, const std::optional<at::Tensor>& w_dw,
                          const std::optional<at::Tensor>& b_dw, std::string epilogue,
                          const std::optional<at::Tensor>& w_out) {
  const int64_t n_in = w_in.size(0);
  const Epilogue e = parse_epilogue(epilogue, n_in);
  const RowGrid g = check_conv_chain(x, norm_weight, norm_bias, w_in, b_in, w_dw, b_dw, e, w_out);
  const int64_t k = g.channels, ld_in = padded(n_in), ld_out = padded(k);
  const int64_t n_mid = epilogue_channels(e, n_in), rows = g.batch * g.height;
  const at::Tensor nw = padded_vector(norm_weight, padded(k));
  const at::Tensor nb = padded_vector(norm_bias, padded(k));
  const at::Tensor win = padded_rows(w_in.t(), ld_in);
  const at::Tensor taps = w_dw.has_value() ? dwconv_taps(*w_dw, false, ld_in) : at::Tensor();
  const at::Tensor bin = padded_vector(b_in, ld_in), bdw = padded_vector(b_dw, ld_in);
  const at::Tensor wout = w_out.has_value() ? padded_rows(w_out->t(), ld_out) : at::Tensor();
  at::Tensor out = empty_output({g.batch, g.height, g.width, wout.defined() ? k : n_mid},
                             x.options());
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "conv_chain_fwd", [&] {
    ConvChainArgs<scalar_t> a;
    a.grid = g;
    a.x = map_view<const scalar_t>(x);
    a.norm_weight = data_or_null<const scalar_t>(nw);
    a.norm_bias = data_or_null<const scalar_t>(nb);
    a.eps = eps;
    a.w_in = win.data_ptr<scalar_t>();
    a.n_in = n_in;
    a.ld_in = ld_in;
    a.b_in = data_or_null<const scalar_t>(bin);
    a.gelu_in = gelu_in;
    a.taps = data_or_null<const scalar_t>(taps);
    a.b_dw = data_or_null<const scalar_t>(bdw);
    a.epilogue = e;
    a.w_out = data_or_null<const scalar_t>(wout);
    a.ld_out = ld_out;
    a.out = out.data_ptr<scalar_t>();
    cpu::run_kernel(ASID_CPU_KERNEL(conv_chain, scalar_t), a, rows,
                    cpu::balanced_parts(rows, kMinRowsPerPart));
  });
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(asid_fast, CPU, m) { m.impl("conv_chain_fwd", &conv_chain_fwd); }

}  // namespace asid
