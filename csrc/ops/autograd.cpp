// Autograd of the extension's layer norm, depthwise convolution and linear map in C++, for every
// device (the Autograd alias key): a training step calls them a few hundred times, and a Python
// autograd formula costs a few hundred microseconds per call. Forward and backward call the ops
// below autograd, so the CPU and CUDA kernels (and fake kernels under torch.compile) serve both.
// The same formulas in Python (asid_fast/ops/*.py) serve the Triton ops.
#include <ATen/core/dispatch/Dispatcher.h>
#include <ATen/ops/zeros_like.h>
#include <torch/csrc/autograd/custom_function.h>
#include <torch/library.h>

#include <string>
#include <tuple>
#include <vector>

#include "ops/checks.h"

namespace asid {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

using Tensor3 = std::tuple<at::Tensor, at::Tensor, at::Tensor>;

template <typename Signature>
c10::TypedOperatorHandle<Signature> op(const char* name) {
  return c10::Dispatcher::singleton().findSchemaOrThrow(name, "").typed<Signature>();
}

// The backward ops have no derivatives of their own: a second-order gradient through them
// (create_graph=True) would silently come out wrong, so it is refused (as in _registry.py).
void check_first_order(const char* name) {
  TORCH_CHECK(!at::GradMode::is_enabled(), name,
              ": higher-order gradients (create_graph=True) are not supported by the fused "
              "operators; use backend='reference' for them");
}

at::Tensor contiguous_grad(const at::Tensor& g, const at::Tensor& like) {
  return g.defined() ? g.contiguous() : at::zeros_like(like);
}

// ---- layer norm -------------------------------------------------------------------------------

class LayerNormFn : public torch::autograd::Function<LayerNormFn> {
 public:
  static variable_list forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& weight,
                               const at::Tensor& bias, double eps) {
    static const auto fwd = op<Tensor3(const at::Tensor&, const at::Tensor&, const at::Tensor&,
                                       double)>("asid_fast::layer_norm_fwd");
    at::AutoDispatchBelowADInplaceOrView guard;
    auto [y, mean, rstd] = fwd.call(x, weight, bias, eps);
    ctx->save_for_backward({x, weight, mean, rstd});
    ctx->mark_non_differentiable({mean, rstd});
    return {y, mean, rstd};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    check_first_order("asid_fast::layer_norm_fwd");
    static const auto bwd = op<Tensor3(const at::Tensor&, const at::Tensor&, const at::Tensor&,
                                       const at::Tensor&, const at::Tensor&)>(
        "asid_fast::layer_norm_bwd");
    const variable_list s = ctx->get_saved_variables();
    auto [dx, dw, db] = bwd.call(contiguous_grad(grads[0], s[0]), s[0], s[1], s[2], s[3]);
    return {dx, dw, db, at::Tensor()};
  }
};

Tensor3 layer_norm_autograd(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias,
                            double eps) {
  const variable_list out = LayerNormFn::apply(x, weight, bias, eps);
  return {out[0], out[1], out[2]};
}

// ---- depthwise 3x3 conv -----------------------------------------------------------------------

class DwconvFn : public torch::autograd::Function<DwconvFn> {
 public:
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& weight,
                            const std::optional<at::Tensor>& bias, std::string epilogue) {
    static const auto fwd = op<at::Tensor(const at::Tensor&, const at::Tensor&,
                                          const std::optional<at::Tensor>&, std::string)>(
        "asid_fast::depthwise_conv3x3_fwd");
    at::AutoDispatchBelowADInplaceOrView guard;
    const bool has_bias = given(bias);
    ctx->save_for_backward({x, weight, has_bias ? *bias : at::Tensor()});
    ctx->saved_data["epilogue"] = epilogue;
    return fwd.call(x, weight, bias, epilogue);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    check_first_order("asid_fast::depthwise_conv3x3_fwd");
    static const auto bwd =
        op<Tensor3(const at::Tensor&, const at::Tensor&, const at::Tensor&,
                   const std::optional<at::Tensor>&, std::string)>(
            "asid_fast::depthwise_conv3x3_bwd");
    const variable_list s = ctx->get_saved_variables();
    const std::optional<at::Tensor> bias =
        s[2].defined() ? std::optional<at::Tensor>(s[2]) : std::nullopt;
    const std::string epilogue = ctx->saved_data["epilogue"].toStringRef();
    auto [dx, dw, db] = bwd.call(grads[0].contiguous(), s[0], s[1], bias, epilogue);
    return {dx, dw, bias.has_value() ? db : at::Tensor(), at::Tensor()};
  }
};

at::Tensor dwconv_autograd(const at::Tensor& x, const at::Tensor& weight,
                           const std::optional<at::Tensor>& bias, std::string epilogue) {
  return DwconvFn::apply(x, weight, bias, std::move(epilogue));
}

// ---- linear map -------------------------------------------------------------------------------

using LinearOp = at::Tensor(at::TensorList, const at::Tensor&, const std::optional<at::Tensor>&,
                            const std::optional<at::Tensor>&, const std::optional<at::Tensor>&);

std::optional<at::Tensor> optional(const at::Tensor& t) {
  return t.defined() ? std::optional<at::Tensor>(t) : std::nullopt;
}

// pre = residual + cat(xs) W^T + bias (W: (N, K) or per image (B, N, K)), out = gate * sigmoid(pre)
// with a gate, else pre. With a gate the op saves bias, residual and gate: linear_bwd recomputes
// pre. Without one the residual's gradient is the incoming gradient itself.
class LinearFn : public torch::autograd::Function<LinearFn> {
 public:
  static at::Tensor forward(AutogradContext* ctx, at::TensorList xs, const at::Tensor& weight,
                            const std::optional<at::Tensor>& bias,
                            const std::optional<at::Tensor>& residual,
                            const std::optional<at::Tensor>& gate) {
    static const auto fwd = op<LinearOp>("asid_fast::linear_fwd");
    at::AutoDispatchBelowADInplaceOrView guard;
    variable_list saved(xs.begin(), xs.end());
    saved.push_back(weight);
    if (given(gate)) {
      saved.push_back(given(bias) ? *bias : at::Tensor());
      saved.push_back(given(residual) ? *residual : at::Tensor());
      saved.push_back(*gate);
    }
    ctx->save_for_backward(saved);
    ctx->saved_data["inputs"] = static_cast<int64_t>(xs.size());
    ctx->saved_data["has_bias"] = given(bias);
    ctx->saved_data["has_residual"] = given(residual);
    ctx->saved_data["has_gate"] = given(gate);
    return fwd.call(xs, weight, bias, residual, gate);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    check_first_order("asid_fast::linear_fwd");
    static const auto bwd =
        op<std::vector<at::Tensor>(const at::Tensor&, at::TensorList, const at::Tensor&,
                                   const std::optional<at::Tensor>&,
                                   const std::optional<at::Tensor>&,
                                   const std::optional<at::Tensor>&)>("asid_fast::linear_bwd");
    const variable_list s = ctx->get_saved_variables();
    const size_t inputs = static_cast<size_t>(ctx->saved_data["inputs"].toInt());
    const bool has_gate = ctx->saved_data["has_gate"].toBool();
    const auto saved = [&](size_t i) { return has_gate ? optional(s[inputs + i]) : std::nullopt; };
    // [dx_0, ..., dx_{inputs-1}, dweight, dbias, dresidual, dgate]
    variable_list out = bwd.call(grads[0], at::TensorList(s.data(), inputs), s[inputs], saved(1),
                                 saved(2), saved(3));
    if (!ctx->saved_data["has_bias"].toBool()) out[inputs + 1] = at::Tensor();
    at::Tensor& d_residual = out[inputs + 2];
    if (!ctx->saved_data["has_residual"].toBool()) d_residual = at::Tensor();
    else if (!has_gate) d_residual = grads[0];
    if (!has_gate) out[inputs + 3] = at::Tensor();
    return out;
  }
};

at::Tensor linear_autograd(at::TensorList xs, const at::Tensor& weight,
                           const std::optional<at::Tensor>& bias,
                           const std::optional<at::Tensor>& residual,
                           const std::optional<at::Tensor>& gate) {
  return LinearFn::apply(xs, weight, bias, residual, gate);
}

}  // namespace

TORCH_LIBRARY_IMPL(asid_fast, Autograd, m) {
  m.impl("layer_norm_fwd", &layer_norm_autograd);
  m.impl("depthwise_conv3x3_fwd", &dwconv_autograd);
  m.impl("linear_fwd", &linear_autograd);
}

}  // namespace asid
