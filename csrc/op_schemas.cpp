// Schemas of the window operators in the asid_fast namespace, exactly as documented in
// asid_fast/ops/registration.py (prefix ""). Kernels are registered per dispatch key in
// cpu/*_ops.cpp and cuda/*_binding.cpp; fake (meta) kernels, autograd and FLOP formulas in
// asid_fast/ops/backends/ext.py.
#include <torch/library.h>

TORCH_LIBRARY_FRAGMENT(asid_fast, m) {
  m.set_python_module("asid_fast.ops.backends.ext");
  m.def(
      "window_attention_fwd(Tensor q, Tensor k, Tensor v, Tensor? bias, str mode, int window, "
      "float scale) -> (Tensor out, Tensor attn)");
  m.def(
      "window_attention_bwd(Tensor grad_out, Tensor? grad_attn, Tensor q, Tensor k, Tensor v, "
      "Tensor attn, Tensor? bias, str mode, int window, float scale) -> (Tensor dq, Tensor dk, "
      "Tensor dv, Tensor dbias)");
  m.def("shared_window_attention_fwd(Tensor attn, Tensor v, str mode, int window) -> Tensor");
  m.def(
      "shared_window_attention_bwd(Tensor grad_out, Tensor attn, Tensor v, str mode, int window) "
      "-> (Tensor dattn, Tensor dv)");
  m.def(
      "channel_attention_fwd(Tensor q, Tensor k, Tensor v, Tensor temperature, str mode, "
      "int window) -> (Tensor out, Tensor attn, Tensor rq, Tensor rk)");
  m.def(
      "channel_attention_bwd(Tensor grad_out, Tensor q, Tensor k, Tensor v, Tensor temperature, "
      "Tensor attn, Tensor rq, Tensor rk, str mode, int window) -> (Tensor dq, Tensor dk, "
      "Tensor dv, Tensor dtemperature)");
}
