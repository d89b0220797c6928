// Entries of attention_block_fwd and shared_attention_block_fwd (schemas:
// asid_fast/ops/attention_block.py) for CPU tensors: argument checks, the transposed and padded
// weights, the outputs, the kernel arguments and the launch (cpu/kernels/attention_block.h).
// Their autograd is the Python formula (recomputation through the composition).
#include <ATen/Dispatch.h>
#include <torch/library.h>

#include "cpu/parallel.h"
#include "ops/attention_block.h"
#include "ops/bf16_products.h"
#include "ops/checks.h"
#include "ops/output_cache.h"

namespace asid {
namespace {

// x (B, H, W, d) with H, W multiples of window; LayerNorm weight and bias (d); w_in
// (projections * d, d); w_out (d, d). Returns the windows' layout.
GroupLayout check_block(const at::Tensor& x, const at::Tensor& norm_weight,
                        const at::Tensor& norm_bias, const at::Tensor& w_in,
                        const at::Tensor& w_out, int64_t projections, const std::string& mode,
                        int64_t window) {
  check_map("x", x, window);
  const int64_t d = x.size(3);
  check_vector("norm_weight", norm_weight, d, x);
  check_vector("norm_bias", norm_bias, d, x);
  const char* w_in_name = projections == 3 ? "w_qkv" : "w_v";
  check_matrix(w_in_name, w_in, {projections * d, d}, x);
  check_like(w_in_name, w_in, "x", x, /*shape=*/false);
  check_matrix("w_out", w_out, {d, d}, x);
  check_like("w_out", w_out, "x", x, /*shape=*/false);
  return window_layout(mode, x, window);
}

at::Tensor run_block(const at::Tensor& x, const at::Tensor& norm_weight,
                     const at::Tensor& norm_bias, double eps, const at::Tensor& w_in,
                     int64_t projections, const at::Tensor& bias, const at::Tensor& w_out,
                     const GroupLayout& l, double scale, const at::Tensor& attn_in,
                     const at::Tensor& attn_out) {
  const int64_t d = x.size(3), ld = padded(d);
  const at::Tensor nw = padded_vector(norm_weight, ld), nb = padded_vector(norm_bias, ld);
  // W_in^T as (d, projections * ld), each projection's block zero padded to ld columns
  const at::Tensor win = padded_rows(w_in, ld, /*transposed=*/true, projections);
  const at::Tensor wout = padded_rows(w_out, ld, /*transposed=*/true);
  at::Tensor w_in_pairs, w_out_pairs;  // the products in bf16 where torch allows it
  if (bf16_products(x)) {
    w_in_pairs = bf16_pairs(win);
    w_out_pairs = bf16_pairs(wout);
  }
  at::Tensor out = empty_output(x.sizes(), x.options());
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "attention_block_fwd", [&] {
    AttentionBlockArgs<scalar_t> a;
    a.layout = l;
    a.dim = d;
    a.x = map_view<const scalar_t>(x);
    a.norm_weight = nw.data_ptr<scalar_t>();
    a.norm_bias = nb.data_ptr<scalar_t>();
    a.eps = eps;
    a.projections = static_cast<int>(projections);
    a.w_in = win.data_ptr<scalar_t>();
    a.w_out = wout.data_ptr<scalar_t>();
    a.ld_w = ld;
    a.w_in_pairs = data_or_null<const uint32_t>(w_in_pairs);
    a.w_out_pairs = data_or_null<const uint32_t>(w_out_pairs);
    a.bias = data_or_null<const scalar_t>(bias);
    a.scale = scale;
    a.attn_in = data_or_null<const scalar_t>(attn_in);
    a.attn_out = data_or_null<scalar_t>(attn_out);
    a.out = map_view<scalar_t>(out);
    cpu::run_kernel(ASID_CPU_KERNEL(attention_block_forward, scalar_t), a, l.num_groups(),
                    cpu::fixed_parts(l.num_groups()));
  });
  return out;
}

std::tuple<at::Tensor, at::Tensor> attention_block_fwd(
    const at::Tensor& x, const at::Tensor& norm_weight, const at::Tensor& norm_bias, double eps,
    const at::Tensor& w_qkv, const std::optional<at::Tensor>& bias_opt, const at::Tensor& w_out,
    std::string mode, int64_t window, double scale) {
  const GroupLayout l = check_block(x, norm_weight, norm_bias, w_qkv, w_out, 3, mode, window);
  const int64_t n = l.group_size();
  const at::Tensor bias = contiguous_or_undefined(bias_opt);
  if (bias.defined()) {
    check_matrix("bias", bias, {n, n}, x);
    check_like("bias", bias, "x", x, /*shape=*/false);
  }
  at::Tensor attn = empty_output({l.num_groups(), n, n}, x.options());
  at::Tensor out = run_block(x, norm_weight, norm_bias, eps, w_qkv, 3, bias, w_out, l, scale,
                             at::Tensor(), attn);
  return {out, attn};
}

at::Tensor shared_attention_block_fwd(const at::Tensor& x, const at::Tensor& norm_weight,
                                      const at::Tensor& norm_bias, double eps,
                                      const at::Tensor& w_v, const at::Tensor& attn,
                                      const at::Tensor& w_out, std::string mode, int64_t window) {
  const GroupLayout l = check_block(x, norm_weight, norm_bias, w_v, w_out, 1, mode, window);
  const int64_t n = l.group_size();
  check_matrix("attn", attn, {l.num_groups(), n, n}, x);
  check_like("attn", attn, "x", x, /*shape=*/false);
  return run_block(x, norm_weight, norm_bias, eps, w_v, 1, at::Tensor(), w_out, l, 1.0,
                   attn.contiguous(), at::Tensor());
}

}  // namespace

TORCH_LIBRARY_IMPL(asid_fast, CPU, m) {
  m.impl("attention_block_fwd", &attention_block_fwd);
  m.impl("shared_attention_block_fwd", &shared_attention_block_fwd);
}

}  // namespace asid
