// CPU registrations of the fused ops (schemas in cpu/fused_op_schemas.cpp): checks, padded
// parameter copies, output allocation and the parallel split over pixel rows / image rows; the
// per-row work is in fused_kernels.h.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <atomic>

#include "../op_inputs.h"
#include "fused_kernel_table.h"
#include "fused_op_inputs.h"
#include "kernel_table.h"

namespace asid {
namespace cpu {

namespace {

constexpr int64_t kPixelChunk = 2048;  // pixel rows per LayerNorm task
constexpr int64_t kRowChunk = 4;  // image rows per task of the row kernels (scratch reused)
constexpr int kChunksPerThread = 4;  // image-row chunks per worker thread of the conv chain

// Runs fn(begin, end) over chunks of [0, total) that the worker threads take from a shared
// counter, so a thread slowed down (a busy core) takes fewer: for the forward kernels, whose
// results do not depend on the split.
template <typename F>
void for_each_chunk(int64_t total, int64_t chunk, const F& fn) {
  std::atomic<int64_t> next{0};
  const int64_t workers = std::min<int64_t>(at::get_num_threads(), (total + chunk - 1) / chunk);
  at::parallel_for(0, std::max<int64_t>(workers, 1), 1, [&](int64_t, int64_t) {
    for (int64_t s = next.fetch_add(chunk); s < total; s = next.fetch_add(chunk))
      fn(s, std::min(total, s + chunk));
  });
}

int64_t padded(int64_t c) { return (c + 7) / 8 * 8; }  // whole 32-byte vectors of float or double

// A (ld) zero-padded contiguous copy of an optional (n) vector, or an undefined tensor.
at::Tensor padded_vector(const std::optional<at::Tensor>& t, int64_t ld) {
  return t.has_value() && t->defined() ? padded_rows(t->view({1, -1}), ld) : at::Tensor();
}


std::tuple<at::Tensor, at::Tensor, at::Tensor> layer_norm_fwd(const at::Tensor& x,
                                                              const at::Tensor& weight,
                                                              const at::Tensor& bias,
                                                              double eps) {
  const RowGrid g = check_layer_norm_fwd(x, weight, bias);
  const int64_t ld = padded(g.channels);
  const at::Tensor w = padded_vector(weight, ld), b = padded_vector(bias, ld);
  at::Tensor y = at::empty(x.sizes(), x.options());
  at::Tensor mean = at::empty(x.sizes().slice(0, 3), x.options());
  at::Tensor rstd = at::empty_like(mean);
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "fused_layer_norm_fwd", [&] {
    LayerNormFwdArgs<scalar_t> a;
    a.grid = g;
    a.ld = ld;
    a.x = map_view<const scalar_t>(x);
    a.weight = w.data_ptr<scalar_t>();
    a.bias = b.data_ptr<scalar_t>();
    a.eps = eps;
    a.y = y.data_ptr<scalar_t>();
    a.mean = mean.data_ptr<scalar_t>();
    a.rstd = rstd.data_ptr<scalar_t>();
    const auto kernel = fused_kernels<scalar_t>().layer_norm_forward;
    for_each_chunk(g.rows(), kPixelChunk, [&](int64_t s, int64_t e) { kernel(a, s, e); });
  });
  return {y, mean, rstd};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> layer_norm_bwd(const at::Tensor& grad_y,
                                                              const at::Tensor& x,
                                                              const at::Tensor& weight,
                                                              const at::Tensor& mean,
                                                              const at::Tensor& rstd) {
  const RowGrid g = check_layer_norm_bwd(grad_y, x, weight, mean, rstd, x.scalar_type());
  const int64_t ld = padded(g.channels), chunks = (g.rows() + kPixelChunk - 1) / kPixelChunk;
  const at::Tensor w = padded_vector(weight, ld);
  at::Tensor dx = at::empty(x.sizes(), x.options());
  at::Tensor partials = at::zeros({2, chunks, ld}, x.options());  // dweight, dbias per chunk
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "fused_layer_norm_bwd", [&] {
    LayerNormBwdArgs<scalar_t> a;
    a.grid = g;
    a.ld = ld;
    a.x = map_view<const scalar_t>(x);
    a.grad_y = grad_y.data_ptr<scalar_t>();
    a.weight = w.data_ptr<scalar_t>();
    a.mean = mean.data_ptr<scalar_t>();
    a.rstd = rstd.data_ptr<scalar_t>();
    a.dx = dx.data_ptr<scalar_t>();
    scalar_t* p = partials.data_ptr<scalar_t>();
    const auto kernel = fused_kernels<scalar_t>().layer_norm_backward;
    for_each_chunk(g.rows(), kPixelChunk, [&](int64_t s, int64_t e) {  // partials summed in
      LayerNormBwdArgs<scalar_t> pa = a;                                 // chunk order
      pa.dweight = p + (s / kPixelChunk) * ld;
      pa.dbias = p + (chunks + s / kPixelChunk) * ld;
      kernel(pa, s, e);
    });
  });
  const at::Tensor sums = partials.sum(1).narrow(1, 0, g.channels);
  return {dx, sums[0].clone(), sums[1].clone()};
}

template <typename T>
DwconvFwdArgs<T> dwconv_args(const RowGrid& g, int64_t ld, const at::Tensor& x,
                             const at::Tensor& taps, const at::Tensor& bias, Epilogue e) {
  DwconvFwdArgs<T> a;
  a.grid = g;
  a.ld = ld;
  a.x = map_view<const T>(x);
  a.taps = taps.data_ptr<T>();
  a.bias = data_or_null<const T>(bias);
  a.epilogue = e;
  return a;
}


at::Tensor dwconv_fwd(const at::Tensor& x, const at::Tensor& weight,
                      const std::optional<at::Tensor>& bias, std::string epilogue) {
  const Epilogue e = parse_epilogue(epilogue, x.size(3));
  const RowGrid g = check_dwconv(x, weight, bias, e, at::Tensor());
  const int64_t ld = padded(g.channels);
  const at::Tensor taps = dwconv_taps(weight, false, ld), b = padded_vector(bias, ld);
  at::Tensor out = at::empty({g.batch, g.height, g.width, epilogue_channels(e, g.channels)},
                             x.options());
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "fused_dwconv3x3_fwd", [&] {
    DwconvFwdArgs<scalar_t> a = dwconv_args<scalar_t>(g, ld, x, taps, b, e);
    a.out = out.data_ptr<scalar_t>();
    const auto kernel = fused_kernels<scalar_t>().dwconv_forward;
    for_each_chunk(g.batch * g.height, kRowChunk, [&](int64_t s, int64_t t) { kernel(a, s, t); });
  });
  return out;
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> dwconv_bwd(
    const at::Tensor& grad_out, const at::Tensor& x, const at::Tensor& weight,
    const std::optional<at::Tensor>& bias, std::string epilogue) {
  const Epilogue e = parse_epilogue(epilogue, x.size(3));
  const RowGrid g = check_dwconv(x, weight, bias, e, grad_out);
  const int64_t ld = padded(g.channels), image_rows = g.batch * g.height;
  // Fixed chunks of image rows taken by the threads as they come, one partial (dtaps, dbias)
  // per chunk: balanced on a busy machine and summed in a fixed order (deterministic).
  const int64_t chunk = (image_rows + kChunksPerThread * at::get_num_threads() - 1) /
                        (kChunksPerThread * at::get_num_threads());
  const int64_t chunks = (image_rows + chunk - 1) / chunk;
  const at::Tensor taps = dwconv_taps(weight, false, ld), flipped = dwconv_taps(weight, true, ld);
  const at::Tensor b = padded_vector(bias, ld);
  at::Tensor dx = at::empty(x.sizes(), x.options());
  at::Tensor partials = at::zeros({chunks, 10, ld}, x.options());  // 9 taps + bias per chunk
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "fused_dwconv3x3_bwd", [&] {
    DwconvBwdArgs<scalar_t> a;
    a.fwd = dwconv_args<scalar_t>(g, ld, x, taps, b, e);
    a.grad_out = grad_out.data_ptr<scalar_t>();
    a.flipped_taps = flipped.data_ptr<scalar_t>();
    a.dx = dx.data_ptr<scalar_t>();
    const auto kernel = fused_kernels<scalar_t>().dwconv_backward;
    scalar_t* p = partials.data_ptr<scalar_t>();
    for_each_chunk(image_rows, chunk, [&](int64_t s, int64_t t) {
      DwconvBwdArgs<scalar_t> pa = a;
      pa.dtaps = p + (s / chunk) * 10 * ld;
      pa.dbias = pa.dtaps + 9 * ld;
      kernel(pa, s, t);
    });
  });
  const at::Tensor sums = partials.sum(0).narrow(1, 0, g.channels);  // (10, C)
  const at::Tensor dweight = sums.narrow(0, 0, 9).t().contiguous().view({g.channels, 1, 3, 3});
  return {dx, dweight, sums[9].clone()};
}

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
  const int64_t n_mid = epilogue_channels(e, n_in);
  const at::Tensor nw = padded_vector(norm_weight, padded(k));
  const at::Tensor nb = padded_vector(norm_bias, padded(k));
  const at::Tensor win = padded_rows(w_in.t(), ld_in);
  const at::Tensor taps = w_dw.has_value() ? dwconv_taps(*w_dw, false, ld_in) : at::Tensor();
  const at::Tensor bin = padded_vector(b_in, ld_in), bdw = padded_vector(b_dw, ld_in);
  const at::Tensor wout = w_out.has_value() ? padded_rows(w_out->t(), ld_out) : at::Tensor();
  at::Tensor out = at::empty({g.batch, g.height, g.width, wout.defined() ? k : n_mid},
                             x.options());
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "fused_conv_chain_fwd", [&] {
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
    const auto kernel = fused_kernels<scalar_t>().conv_chain;
    // chunks of consecutive image rows: each chunk projects the two rows around it once more
    const int64_t rows = g.batch * g.height;
    const int64_t chunk = std::max<int64_t>(8, rows / (kChunksPerThread * at::get_num_threads()));
    for_each_chunk(rows, chunk, [&](int64_t s, int64_t t) { kernel(a, s, t); });
  });
  return out;
}

at::Tensor linear_fwd(at::TensorList xs_in, const at::Tensor& weight,
                      const std::optional<at::Tensor>& bias,
                      const std::optional<at::Tensor>& residual) {
  const std::vector<at::Tensor> xs = xs_in.vec();
  const RowGrid g = check_linear(xs, weight, bias, residual);
  const int64_t ld_n = padded(g.channels);
  // W^T, (K, ld_n) or per image (B, K, ld_n), zero padded
  const at::Tensor w_t = at::constant_pad_nd(weight.transpose(-1, -2), {0, ld_n - g.channels})
                             .contiguous();
  const at::Tensor b = padded_vector(bias, ld_n);
  at::Tensor out = at::empty({g.batch, g.height, g.width, g.channels}, xs[0].options());
  AT_DISPATCH_FLOATING_TYPES(xs[0].scalar_type(), "fused_linear_fwd", [&] {
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
    a.out = out.data_ptr<scalar_t>();
    const auto kernel = fused_kernels<scalar_t>().linear;
    for_each_chunk(g.batch * g.height, kRowChunk, [&](int64_t s, int64_t t) { kernel(a, s, t); });
  });
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(asid_fast, CPU, m) {
  m.impl("fused_layer_norm_fwd", &layer_norm_fwd);
  m.impl("fused_layer_norm_bwd", &layer_norm_bwd);
  m.impl("fused_dwconv3x3_fwd", &dwconv_fwd);
  m.impl("fused_dwconv3x3_bwd", &dwconv_bwd);
  m.impl("fused_conv_chain_fwd", &conv_chain_fwd);
  m.impl("fused_linear_fwd", &linear_fwd);
}

}  // namespace cpu
}  // namespace asid
