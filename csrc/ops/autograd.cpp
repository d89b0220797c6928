// Autograd of the extension's layer norm, depthwise convolution and linear map in C++, for every
// device (the Autograd alias key): a training step calls them a few hundred times, and a Python
// autograd formula costs a few hundred microseconds per call. Forward and backward call the ops
// below autograd, so the CPU and CUDA kernels (and fake kernels under torch.compile) serve both.
// The same formulas in Python (asid_fast/ops/*.py) serve the Triton ops.
#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/autograd.h>
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
// with a gate, else pre; backward as matmuls. With a gate the op saves bias, residual and gate and
// its backward recomputes pre (one more call of the op without the gate).
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
    const variable_list s = ctx->get_saved_variables();
    const size_t inputs = static_cast<size_t>(ctx->saved_data["inputs"].toInt());
    const at::Tensor& weight = s[inputs];
    const bool has_gate = ctx->saved_data["has_gate"].toBool();
    at::Tensor grad = grads[0], grad_gate;
    if (has_gate) {  // d gate = grad sigmoid(pre), d pre = grad gate sigmoid'(pre), in place
      static const auto fwd = op<LinearOp>("asid_fast::linear_fwd");
      at::Tensor pre;
      {
        at::AutoDispatchBelowADInplaceOrView guard;
        pre = fwd.call(at::TensorList(s.data(), inputs), weight, optional(s[inputs + 1]),
                       optional(s[inputs + 2]), std::nullopt);
      }
      const at::Tensor& sg = pre.sigmoid_();
      grad_gate = grad.mul(sg);
      at::Tensor grad_pre = grad.mul(s[inputs + 3]);
      grad = at::sigmoid_backward_out(grad_pre, grad_pre, sg);
    }
    const bool per_image = weight.dim() == 3;
    const at::Tensor g = per_image ? grad.flatten(1, 2) : grad.reshape({-1, grad.size(-1)});
    variable_list out;
    std::vector<at::Tensor> dws;
    int64_t k0 = 0;
    for (size_t i = 0; i < inputs; ++i) {
      const at::Tensor& x = s[i];
      const int64_t k = x.size(-1);
      const at::Tensor w = weight.narrow(-1, k0, k);
      k0 += k;
      out.push_back(at::matmul(g, w).view(x.sizes()));
      const at::Tensor xf = per_image ? x.flatten(1, 2) : x.reshape({-1, k});
      dws.push_back(at::matmul(g.transpose(-1, -2), xf));
    }
    out.push_back(dws.size() == 1 ? dws[0] : at::cat(dws, -1));
    out.push_back(ctx->saved_data["has_bias"].toBool() ? grad.sum({0, 1, 2}) : at::Tensor());
    out.push_back(ctx->saved_data["has_residual"].toBool() ? grad : at::Tensor());
    out.push_back(grad_gate);
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
