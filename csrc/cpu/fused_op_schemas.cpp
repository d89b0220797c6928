// Schemas of the model-level fused ops in the asid_fast namespace, exactly as documented in
// asid_fast/ops/layer_norm.py and asid_fast/ops/depthwise_conv.py (which register their fake
// kernels and autograd). Kernels: cpu/fused_ops.cpp, cuda/fused_ops_binding.cpp.
#include <torch/library.h>

TORCH_LIBRARY_FRAGMENT(asid_fast, m) {
  m.set_python_module("asid_fast.ops.layer_norm");
  m.def(
      "fused_layer_norm_fwd(Tensor x, Tensor weight, Tensor bias, float eps) -> (Tensor y, "
      "Tensor mean, Tensor rstd)");
  m.def(
      "fused_layer_norm_bwd(Tensor grad_y, Tensor x, Tensor weight, Tensor mean, Tensor rstd) -> "
      "(Tensor dx, Tensor dweight, Tensor dbias)");
}

TORCH_LIBRARY_FRAGMENT(asid_fast, m) {
  m.set_python_module("asid_fast.ops.depthwise_conv");
  m.def("fused_dwconv3x3_fwd(Tensor x, Tensor weight, Tensor? bias, str epilogue) -> Tensor");
  m.def(
      "fused_dwconv3x3_bwd(Tensor grad_out, Tensor x, Tensor weight, Tensor? bias, str epilogue) "
      "-> (Tensor dx, Tensor dweight, Tensor dbias)");
}

TORCH_LIBRARY_FRAGMENT(asid_fast, m) {
  m.set_python_module("asid_fast.ops.conv_chain");
  m.def(
      "fused_conv_chain_fwd(Tensor x, Tensor? norm_weight, Tensor? norm_bias, float eps, "
      "Tensor w_in, Tensor? b_in, bool gelu_in, Tensor? w_dw, Tensor? b_dw, str epilogue, "
      "Tensor? w_out) -> Tensor");
}

TORCH_LIBRARY_FRAGMENT(asid_fast, m) {
  m.set_python_module("asid_fast.ops.linear");
  m.def(
      "fused_linear_fwd(Tensor[] xs, Tensor weight, Tensor? bias, Tensor? residual) -> Tensor");
}
