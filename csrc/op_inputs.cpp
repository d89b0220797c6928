#include "op_inputs.h"

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
  return (t.has_value() && t->defined()) ? t->contiguous() : at::Tensor();
}

}  // namespace asid
