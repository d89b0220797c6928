#include "ops/checks.h"

#include <ATen/Dispatch.h>
#include <ATen/ops/cat.h>
#include <ATen/ops/constant_pad_nd.h>
#include <ATen/ops/empty.h>

#include <algorithm>
#include <utility>
#include <vector>

#include "ops/linear.h"

namespace asid {

void check_map(const char* name, const at::Tensor& t, int64_t window) {
  TORCH_CHECK(window >= 1, "window must be positive, got ", window);
  TORCH_CHECK(t.dim() == 4, name, " must be a (B, H, W, d) channels-last map, got shape ",
              t.sizes());
  TORCH_CHECK(t.numel() > 0, name, " is empty: shape ", t.sizes());
  TORCH_CHECK(t.size(1) % window == 0 && t.size(2) % window == 0, name,
              ": H and W must be multiples of window=", window, ", got ", t.sizes());
  TORCH_CHECK(t.stride(3) == 1, name, " must have a unit channel stride (channels-last), got ",
              "strides ", t.strides());
  TORCH_CHECK(at::isFloatingType(t.scalar_type()), name, " must be a floating tensor, got ",
              t.scalar_type());
}

void check_like(const char* name, const at::Tensor& t, const char* ref_name, const at::Tensor& ref,
                bool shape) {
  TORCH_CHECK(t.device() == ref.device(), name, " is on ", t.device(), " but ", ref_name,
              " is on ", ref.device());
  TORCH_CHECK(t.scalar_type() == ref.scalar_type(), name, " has dtype ", t.scalar_type(), " but ",
              ref_name, " has ", ref.scalar_type());
  TORCH_CHECK(!shape || t.sizes() == ref.sizes(), name, " has shape ", t.sizes(), " but ",
              ref_name, " has ", ref.sizes());
}

void check_matrix(const char* name, const at::Tensor& t, at::IntArrayRef shape,
                  const at::Tensor& ref) {
  TORCH_CHECK(t.sizes() == shape, name, " must have shape ", shape, ", got ", t.sizes());
  TORCH_CHECK(t.device() == ref.device(), name, " is on ", t.device(), " but the maps are on ",
              ref.device());
}

GroupLayout window_layout(const std::string& mode, const at::Tensor& map, int64_t window) {
  TORCH_CHECK(mode == "meso" || mode == "global", "mode must be 'meso' or 'global', got '", mode,
              "'");
  return window_attention_layout(mode == "global", map.size(0), map.size(1), map.size(2), window);
}

GroupLayout channel_layout(const std::string& mode, const at::Tensor& map, int64_t window) {
  TORCH_CHECK(mode == "window" || mode == "cell", "mode must be 'window' or 'cell', got '", mode,
              "'");
  return channel_attention_layout(mode == "cell", map.size(0), map.size(1), map.size(2), window);
}

namespace {

// q, k, v: maps of one shape, device and dtype.
void check_qkv(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, int64_t window) {
  check_map("q", q, window);
  check_like("k", k, "q", q);
  check_like("v", v, "q", q);
  check_map("k", k, window);
  check_map("v", v, window);
}

}  // namespace

GroupLayout check_window_attention_fwd(const at::Tensor& q, const at::Tensor& k,
                                       const at::Tensor& v, const at::Tensor& bias,
                                       const std::string& mode, int64_t window) {
  check_qkv(q, k, v, window);
  if (bias.defined()) {
    check_matrix("bias", bias, {window * window, window * window}, q);
    check_like("bias", bias, "q", q, /*shape=*/false);
  }
  return window_layout(mode, q, window);
}

GroupLayout check_window_attention_bwd(const at::Tensor& grad_out, const at::Tensor& grad_attn,
                                       const at::Tensor& q, const at::Tensor& k,
                                       const at::Tensor& v, const at::Tensor& attn,
                                       const at::Tensor& bias, const std::string& mode,
                                       int64_t window) {
  const GroupLayout l = check_window_attention_fwd(q, k, v, bias, mode, window);
  check_like("grad_out", grad_out, "q", q);
  check_map("grad_out", grad_out, window);
  const int64_t n = l.group_size();
  check_matrix("attn", attn, {l.num_groups(), n, n}, q);
  check_like("attn", attn, "q", q, /*shape=*/false);
  if (grad_attn.defined()) {
    check_matrix("grad_attn", grad_attn, {l.num_groups(), n, n}, q);
    check_like("grad_attn", grad_attn, "q", q, /*shape=*/false);
  }
  return l;
}

GroupLayout check_shared_window_attention(const at::Tensor& attn, const at::Tensor& v,
                                          const at::Tensor& grad_out, const std::string& mode,
                                          int64_t window) {
  check_map("v", v, window);
  const GroupLayout l = window_layout(mode, v, window);
  const int64_t n = l.group_size();
  check_matrix("attn", attn, {l.num_groups(), n, n}, v);
  check_like("attn", attn, "v", v, /*shape=*/false);
  if (grad_out.defined()) {
    check_like("grad_out", grad_out, "v", v);
    check_map("grad_out", grad_out, window);
  }
  return l;
}

GroupLayout check_channel_attention_fwd(const at::Tensor& q, const at::Tensor& k,
                                        const at::Tensor& v, const at::Tensor& temperature,
                                        const std::string& mode, int64_t window) {
  check_qkv(q, k, v, window);
  TORCH_CHECK(temperature.numel() == 1, "temperature must have one element, got shape ",
              temperature.sizes());
  check_like("temperature", temperature, "q", q, /*shape=*/false);
  return channel_layout(mode, q, window);
}

GroupLayout check_channel_attention_bwd(const at::Tensor& grad_out, const at::Tensor& q,
                                        const at::Tensor& k, const at::Tensor& v,
                                        const at::Tensor& temperature, const at::Tensor& attn,
                                        const at::Tensor& rq, const at::Tensor& rk,
                                        const std::string& mode, int64_t window) {
  const GroupLayout l = check_channel_attention_fwd(q, k, v, temperature, mode, window);
  check_like("grad_out", grad_out, "q", q);
  check_map("grad_out", grad_out, window);
  const int64_t c = q.size(3);
  const at::ScalarType stats = channel_stats_dtype(q.scalar_type());
  check_matrix("attn", attn, {l.num_groups(), c, c}, q);
  check_matrix("rq", rq, {l.num_groups(), c}, q);
  check_matrix("rk", rk, {l.num_groups(), c}, q);
  for (const at::Tensor* t : {&attn, &rq, &rk})
    TORCH_CHECK(t->scalar_type() == stats, "attn, rq and rk must have dtype ", stats, ", got ",
                t->scalar_type());
  return l;
}

at::ScalarType channel_stats_dtype(at::ScalarType map_dtype) {
  return (map_dtype == at::kHalf || map_dtype == at::kBFloat16) ? at::kFloat : map_dtype;
}

at::Tensor contiguous_or_undefined(const std::optional<at::Tensor>& t) {
  return given(t) ? t->contiguous() : at::Tensor();
}

RowGrid row_grid(const at::Tensor& x) {
  RowGrid g;
  g.batch = x.size(0);
  g.height = x.size(1);
  g.width = x.size(2);
  g.channels = x.size(3);
  return g;
}

Epilogue parse_epilogue(const std::string& name, int64_t channels) {
  if (name == "none") return Epilogue::kNone;
  if (name == "gelu") return Epilogue::kGelu;
  TORCH_CHECK(name == "gate", "epilogue must be 'none', 'gelu' or 'gate', got '", name, "'");
  TORCH_CHECK(channels % 2 == 0, "epilogue 'gate' needs an even channel count, got ", channels);
  return Epilogue::kGate;
}

int64_t epilogue_channels(Epilogue e, int64_t channels) {
  return e == Epilogue::kGate ? channels / 2 : channels;
}

void check_vector(const char* name, const at::Tensor& t, int64_t n, const at::Tensor& x) {
  TORCH_CHECK(t.dim() == 1 && t.size(0) == n, name, " must have shape (", n, "), got ",
              t.sizes());
  check_like(name, t, "x", x, /*shape=*/false);
}

RowGrid check_layer_norm_fwd(const at::Tensor& x, const at::Tensor& weight,
                             const at::Tensor& bias) {
  check_map("x", x, 1);
  check_vector("weight", weight, x.size(3), x);
  check_vector("bias", bias, x.size(3), x);
  return row_grid(x);
}

RowGrid check_layer_norm_bwd(const at::Tensor& grad_y, const at::Tensor& x,
                             const at::Tensor& weight, const at::Tensor& mean,
                             const at::Tensor& rstd, at::ScalarType stats_dtype) {
  check_map("x", x, 1);
  check_like("grad_y", grad_y, "x", x);
  TORCH_CHECK(grad_y.is_contiguous(), "grad_y must be contiguous");
  check_vector("weight", weight, x.size(3), x);
  for (const auto& [name, t] : {std::pair{"mean", &mean}, std::pair{"rstd", &rstd}}) {
    TORCH_CHECK(t->sizes() == x.sizes().slice(0, 3), name, " must have shape ",
                x.sizes().slice(0, 3), ", got ", t->sizes());
    TORCH_CHECK(t->scalar_type() == stats_dtype && t->device() == x.device() &&
                    t->is_contiguous(),
                name, " must be a contiguous ", stats_dtype, " tensor on ", x.device());
  }
  return row_grid(x);
}

RowGrid check_dwconv(const at::Tensor& x, const at::Tensor& weight,
                     const std::optional<at::Tensor>& bias, Epilogue e,
                     const at::Tensor& grad_out) {
  check_map("x", x, 1);
  const int64_t c = x.size(3);
  TORCH_CHECK(weight.sizes() == at::IntArrayRef({c, 1, 3, 3}), "weight must have shape (", c,
              ", 1, 3, 3), got ", weight.sizes());
  check_like("weight", weight, "x", x, /*shape=*/false);
  if (given(bias)) check_vector("bias", *bias, c, x);
  if (grad_out.defined()) {
    check_like("grad_out", grad_out, "x", x, /*shape=*/false);
    TORCH_CHECK(grad_out.is_contiguous(), "grad_out must be contiguous");
    const auto s = x.sizes();
    TORCH_CHECK(grad_out.sizes() == at::IntArrayRef({s[0], s[1], s[2], epilogue_channels(e, c)}),
                "grad_out has shape ", grad_out.sizes(), ", expected the forward output's");
  }
  return row_grid(x);
}

RowGrid check_conv_chain(const at::Tensor& x, const std::optional<at::Tensor>& norm_weight,
                         const std::optional<at::Tensor>& norm_bias, const at::Tensor& w_in,
                         const std::optional<at::Tensor>& b_in,
                         const std::optional<at::Tensor>& w_dw,
                         const std::optional<at::Tensor>& b_dw, Epilogue e,
                         const std::optional<at::Tensor>& w_out) {
  check_map("x", x, 1);
  const int64_t k = x.size(3), n_in = w_in.size(0);
  TORCH_CHECK(w_in.dim() == 2 && w_in.size(1) == k, "w_in must be (n_in, ", k, "), got ",
              w_in.sizes());
  check_like("w_in", w_in, "x", x, /*shape=*/false);
  TORCH_CHECK(norm_weight.has_value() == norm_bias.has_value(),
              "norm_weight and norm_bias must be given together");
  if (norm_weight.has_value()) {
    check_vector("norm_weight", *norm_weight, k, x);
    check_vector("norm_bias", *norm_bias, k, x);
  }
  if (w_dw.has_value()) {
    check_dwconv(x.new_empty({1, 1, 1, n_in}), *w_dw, b_dw, e, at::Tensor());
    check_like("w_dw", *w_dw, "x", x, /*shape=*/false);
  } else {
    TORCH_CHECK(e == Epilogue::kNone && !b_dw.has_value(),
                "without w_dw the epilogue must be 'none' and b_dw absent");
  }
  if (b_in.has_value()) check_vector("b_in", *b_in, n_in, x);
  if (w_out.has_value()) {
    TORCH_CHECK(w_out->dim() == 2 && w_out->size(0) == k &&
                    w_out->size(1) == epilogue_channels(e, n_in),
                "w_out must be (", k, ", ", epilogue_channels(e, n_in), "), got ", w_out->sizes());
    check_like("w_out", *w_out, "x", x, /*shape=*/false);
  }
  return row_grid(x);
}

RowGrid check_linear(const std::vector<at::Tensor>& xs, const at::Tensor& weight,
                     const std::optional<at::Tensor>& bias,
                     const std::optional<at::Tensor>& residual,
                     const std::optional<at::Tensor>& gate) {
  TORCH_CHECK(!xs.empty() && xs.size() <= size_t(kMaxLinearInputs), "xs must hold 1 to ",
              kMaxLinearInputs, " maps, got ", xs.size());
  int64_t k = 0;
  for (const at::Tensor& x : xs) {
    check_map("xs[i]", x, 1);
    check_like("xs[i]", x, "xs[0]", xs[0], /*shape=*/false);
    TORCH_CHECK(x.sizes().slice(0, 3) == xs[0].sizes().slice(0, 3),
                "every map of xs must have the same (B, H, W), got ", x.sizes(), " and ",
                xs[0].sizes());
    k += x.size(3);
  }
  const at::Tensor& x0 = xs[0];
  const bool per_image = weight.dim() == 3;
  TORCH_CHECK((weight.dim() == 2 || (per_image && weight.size(0) == x0.size(0))) &&
                  weight.size(-1) == k,
              "weight must be (N, ", k, ") or (", x0.size(0), ", N, ", k, "), got ",
              weight.sizes());
  check_like("weight", weight, "xs[0]", x0, /*shape=*/false);
  const int64_t n = weight.size(-2);
  if (bias.has_value()) check_vector("bias", *bias, n, x0);
  for (const auto& [name, t] : {std::pair{"residual", &residual}, std::pair{"gate", &gate}}) {
    if (!t->has_value()) continue;
    check_map(name, **t, 1);
    check_like(name, **t, "xs[0]", x0, /*shape=*/false);
    TORCH_CHECK((*t)->sizes() == at::IntArrayRef({x0.size(0), x0.size(1), x0.size(2), n}), name,
                " must have shape (B, H, W, ", n, "), got ", (*t)->sizes());
  }
  RowGrid g = row_grid(x0);
  g.channels = n;
  return g;
}

namespace {

// to (stack, rows, blocks * ld) from the (stack, rows, blocks * cols) matrices whose element
// (i, r, c) is at src[i * s0 + r * s1 + c * s2]: column block j of a row is columns j * cols ..
// (j + 1) * cols - 1, zero padded to ld.
template <typename T>
void copy_padded(const T* src, int64_t s0, int64_t s1, int64_t s2, int64_t stack, int64_t rows,
                 int64_t blocks, int64_t cols, int64_t ld, T* to) {
  for (int64_t i = 0; i < stack; ++i)
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t j = 0; j < blocks; ++j, to += ld) {
        const T* from = src + i * s0 + r * s1 + j * cols * s2;
        for (int64_t c = 0; c < cols; ++c) to[c] = from[c * s2];
        std::fill(to + cols, to + ld, T(0));
      }
}

}  // namespace

at::Tensor padded_rows(const at::Tensor& t, int64_t ld, bool transposed, int64_t blocks) {
  const int64_t d = t.dim();
  TORCH_CHECK(d >= 1 && d <= 3, "padded_rows: a vector, matrix or matrix stack, got ", t.sizes());
  // (stack, rows, columns) sizes and strides of t, a vector being one row
  int64_t size[3] = {1, 1, 1}, stride[3] = {0, 0, 0};
  for (int64_t i = 0; i < d; ++i) {
    size[3 - d + i] = t.size(i);
    stride[3 - d + i] = t.stride(i);
  }
  if (transposed) {
    std::swap(size[1], size[2]);
    std::swap(stride[1], stride[2]);
  }
  const int64_t cols = size[2] / blocks;
  std::vector<int64_t> shape{size[1], blocks * ld};
  if (d == 3) shape.insert(shape.begin(), size[0]);
  if (!t.device().is_cpu()) {
    const at::Tensor m =
        t.as_strided({size[0], size[1], size[2]}, {stride[0], stride[1], stride[2]});
    std::vector<at::Tensor> padded;
    for (int64_t j = 0; j < blocks; ++j)
      padded.push_back(at::constant_pad_nd(m.narrow(2, j * cols, cols), {0, ld - cols}));
    return (blocks == 1 ? padded[0] : at::cat(padded, 2)).contiguous().view(shape);
  }
  // CPU parameters are small: one allocation and a loop instead of half a dozen ATen calls, which
  // on a small map (a tile) would cost more than the op's kernel
  at::Tensor out = at::empty(shape, t.options());
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, t.scalar_type(), "padded_rows", [&] {
    copy_padded(t.const_data_ptr<scalar_t>(), stride[0], stride[1], stride[2], size[0], size[1],
                blocks, cols, ld, out.mutable_data_ptr<scalar_t>());
  });
  return out;
}

at::Tensor padded_vector(const std::optional<at::Tensor>& t, int64_t ld) {
  return given(t) ? padded_rows(*t, ld) : at::Tensor();
}

at::Tensor dwconv_taps(const at::Tensor& weight, bool flipped, int64_t ld) {
  const at::Tensor w = flipped ? weight.flip({2, 3}) : weight;
  return padded_rows(w.reshape({weight.size(0), 9}), ld, /*transposed=*/true);
}

}  // namespace asid
