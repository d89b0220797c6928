"""The per-pixel / depthwise convolution chain at the heart of ASID's blocks, on channels-last
(B, H, W, K) maps:

    a   = LayerNorm(x) if norm else x
    p   = a W_inᵀ (+ b_in), then GELU if gelu_in                 (n_in channels)
    m   = epilogue(dwconv3x3(p, w_dw) (+ b_dw)), or p if w_dw is None  ("none" | "gelu" | "gate")
    out = x + m W_outᵀ if w_out is given, else m

It is the gated FFN (norm, project_in, dwconv, gate, project_out, residual), the head of the
local module (conv, GELU, dwconv, GELU), the q/k/v projection of channel attention (norm, 1x1,
dwconv) and that of spatial attention (norm, 1x1).

Operator ``asid_fast::<prefix>conv_chain_fwd(x, norm_weight?, norm_bias?, eps, w_in, b_in?,
gelu_in, w_dw?, b_dw?, epilogue, w_out?) -> out``: the extension's CPU kernels stream the image
row by row, keeping the 1x1 output of the three rows under the 3x3 kernel in a ring buffer, so
that no intermediate map touches memory; the Triton kernels (prefix "triton_"; K and n_mid up to
64) write the 1x1 output as one map and read its 3x3 neighbourhoods in a second kernel
(kernels/conv_chain.py).

Where torch allows bf16 for float32 matmuls on the CPU
(``torch.backends.mkldnn.matmul.fp32_precision = "bf16"``) and the CPU has AVX512-BF16, the CPU
forward's two 1x1 products take bf16 inputs with float32 sums (csrc/cpu/bf16_products.h).

Its autograd saves the inputs only. On the CPU the backward is ``asid_fast::conv_chain_bwd(
grad_out, <the forward's arguments>) -> (dx, dnorm_weight, dnorm_bias, dw_in, db_in, dw_dw, db_dw,
dw_out)``: one more row-streamed pass that recomputes the chain from x and runs its backward
through rings of rows (W_out's product, the epilogue's derivative, the transposed depthwise conv,
GELU's derivative, W_in's product, LayerNorm's backward, the residual), adding the parameter
gradients into one partial sum per work part; the gradients of absent biases are those of zero
biases, those of an absent norm, w_dw or w_out empty. So training runs the op too. The Triton
op's backward recomputes through the composition, so on the GPU training runs the composition
(which saves its activations). Everywhere else the chain is the composition of the fused ops
(:func:`layer_norm`, :func:`depthwise_conv3x3`) and matmuls on the requested backend; with
``backend="reference"`` it is exactly what the reference model computes.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ._checks import autocast_inputs
from ._registry import (OpDef, compiled_backend, define, library_op, recomputing_autograd,
                        reference_gradients, saved_arguments)
from .depthwise_conv3x3 import depthwise_conv3x3
from .layer_norm import layer_norm

__all__ = ["conv_chain"]
FAMILY = "conv_chain"
TRITON_MAX_CHANNELS = 64  # kernels/conv_chain.py: K and n_mid channels in one tile each
# the backends whose op has a fused backward (conv_chain_bwd); under autograd the others run the
# composition, which saves its activations, rather than recompute it in the backward
OPS_WITH_FUSED_BACKWARD = ("cpu",)


def composed_conv_chain(x, w_in, w_dw, norm, b_in, gelu_in, b_dw, epilogue, w_out, backend):
    """The chain as separate operators (see the module docstring for the arguments)."""
    a = layer_norm(x, norm[0], norm[1], norm[2], backend=backend) if norm is not None else x
    p = F.linear(a, w_in, b_in)
    if gelu_in:
        p = F.gelu(p)
    m = p if w_dw is None else depthwise_conv3x3(p, w_dw, b_dw, epilogue=epilogue,
                                                  backend=backend)
    if w_out is None:
        return m
    k = x.shape[-1]
    out = torch.addmm(x.reshape(-1, k), m.reshape(-1, m.shape[-1]), w_out.t())
    return out.view(x.shape)


def _op_composition(backend):
    """The op's arguments -> the composition on ``backend``."""
    def run(x, norm_weight, norm_bias, eps, w_in, b_in, gelu_in, w_dw, b_dw, epilogue, w_out):
        norm = (norm_weight, norm_bias, eps) if norm_weight is not None else None
        return composed_conv_chain(x, w_in, w_dw, norm, b_in, gelu_in, b_dw, epilogue, w_out,
                                   backend)
    return run


def _n_mid(w_in, epilogue):
    return w_in.shape[0] // 2 if epilogue == "gate" else w_in.shape[0]


def _size(x, norm_weight, norm_bias, eps, w_in, b_in, gelu_in, w_dw, b_dw, epilogue, w_out):
    return x.shape[-1], _n_mid(w_in, epilogue)


def _limits(backend, channels, n_mid):
    if backend == "triton" and max(channels, n_mid) > TRITON_MAX_CHANNELS:
        return (f"its kernel takes at most {TRITON_MAX_CHANNELS} input and middle channels, got "
                f"{channels} and {n_mid}")
    return None


def _fake(x, norm_weight, norm_bias, eps, w_in, b_in, gelu_in, w_dw, b_dw, epilogue, w_out):
    n_mid = _n_mid(w_in, epilogue)
    return x.new_empty((*x.shape[:3], x.shape[3] if w_out is not None else n_mid))


# the Triton op's gradients: the chain recomputed as the composition of the compiled ops
_setup, _recomputed_backward = recomputing_autograd(_op_composition("auto"))


def _backward(ops, ctx, grad_out):
    """conv_chain_bwd where the op's library has it, else the recomputed composition."""
    if not ops.has("conv_chain_bwd"):
        return _recomputed_backward(ops, ctx, grad_out)
    x, nw, nb, eps, w_in, b_in, gelu_in, w_dw, b_dw, epilogue, w_out = saved_arguments(ctx)
    dx, dnw, dnb, dw_in, db_in, dw_dw, db_dw, dw_out = ops.conv_chain_bwd(
        grad_out.contiguous(), x, nw, nb, eps, w_in, b_in, gelu_in, w_dw, b_dw, epilogue, w_out)

    def given(arg, grad):
        return grad if arg is not None else None
    return (dx, given(nw, dnw), given(nb, dnb), None, dw_in, given(b_in, db_in), None,
            given(w_dw, dw_dw), given(b_dw, db_dw), None, given(w_out, dw_out))


def _bwd_reference(grad_out, x, norm_weight, norm_bias, eps, w_in, b_in, gelu_in, w_dw, b_dw,
                   epilogue, w_out):
    """conv_chain_bwd's outputs through the reference composition."""
    n_in = w_in.shape[0]
    b_in = b_in if b_in is not None else w_in.new_zeros(n_in)
    if w_dw is not None and b_dw is None:
        b_dw = w_in.new_zeros(n_in)
    compose = _op_composition("reference")

    def fwd(x, norm_weight, norm_bias, w_in, b_in, w_dw, b_dw, w_out):
        return (compose(x, norm_weight, norm_bias, eps, w_in, b_in, gelu_in, w_dw, b_dw, epilogue,
                        w_out),)
    grads = reference_gradients(fwd, (x, norm_weight, norm_bias, w_in, b_in, w_dw, b_dw, w_out),
                                (grad_out,))
    return tuple(g if g is not None else x.new_empty(0) for g in grads)


def _bwd_fake(grad_out, x, norm_weight, norm_bias, eps, w_in, b_in, gelu_in, w_dw, b_dw, epilogue,
              w_out):
    def like(t):
        return t.new_empty(t.shape) if t is not None else x.new_empty(0)
    bias = w_in.new_empty(w_in.shape[0])
    return (x.new_empty(x.shape), like(norm_weight), like(norm_bias), like(w_in), bias,
            like(w_dw), bias.new_empty(bias.shape) if w_dw is not None else x.new_empty(0),
            like(w_out))


def _flops(x, norm_weight, norm_bias, eps, w_in, b_in, gelu_in, w_dw, b_dw, epilogue, w_out,
           **_):
    pixels = x[0] * x[1] * x[2]
    n_in = w_in[0]
    n_mid = n_in // 2 if epilogue == "gate" else n_in
    return 2 * pixels * (x[3] * n_in + (9 * n_in if w_dw is not None else 0)
                         + (n_mid * x[3] if w_out is not None else 0))


_ARGUMENTS = ("Tensor x, Tensor? norm_weight, Tensor? norm_bias, float eps, Tensor w_in, "
              "Tensor? b_in, bool gelu_in, Tensor? w_dw, Tensor? b_dw, str epilogue, "
              "Tensor? w_out")
define(OpDef(
    name="conv_chain_fwd", family=FAMILY, backends=("cpu", "triton"), size=_size, limits=_limits,
    tensor_core_backends=("triton",),
    schema=f"({_ARGUMENTS}) -> Tensor",
    fake=_fake, reference=_op_composition("reference"), backward=_backward, setup_context=_setup,
    flops=_flops,
))
define(OpDef(  # FLOPs: each gradient costs the forward's (the recomputation is not counted)
    name="conv_chain_bwd", family=FAMILY, backends=("cpu",),
    schema=f"(Tensor grad_out, {_ARGUMENTS}) -> (Tensor dx, Tensor dnorm_weight, "
           "Tensor dnorm_bias, Tensor dw_in, Tensor db_in, Tensor dw_dw, Tensor db_dw, "
           "Tensor dw_out)",
    fake=_bwd_fake, reference=_bwd_reference,
    flops=lambda grad_out, *args, **_: 2 * _flops(*args),
))


def conv_chain(x, w_in, w_dw, *, norm=None, b_in=None, gelu_in=False, b_dw=None,
               epilogue="none", w_out=None, backend="auto"):
    """The chain of the module docstring. x (B, H, W, K) with unit channel stride; w_in (n_in, K);
    w_dw (n_in, 1, 3, 3) or None (then epilogue "none"); norm (weight, bias, eps) or None; b_in,
    b_dw (n_in,) or None; w_out (K, n_mid) or None. Returns a contiguous (B, H, W, K if w_out
    else n_mid) map."""
    if w_dw is None and (epilogue != "none" or b_dw is not None):
        raise ValueError("without w_dw the epilogue must be 'none' and b_dw None")
    x, w_in, w_dw, b_in, b_dw, w_out, *norm_wb = autocast_inputs(
        x, w_in, w_dw, b_in, b_dw, w_out, *(norm[:2] if norm is not None else ()))
    if norm is not None:
        norm = (*norm_wb, norm[2])
    tensors = (x, w_in, w_dw, b_in, b_dw, w_out) + (tuple(norm[:2]) if norm is not None else ())
    needs_grad = torch.is_grad_enabled() and any(t is not None and t.requires_grad
                                                 for t in tensors)
    name = None if x.stride(-1) != 1 else compiled_backend(
        "conv_chain_fwd", backend, x.device.type, x.dtype, (x.shape[-1], _n_mid(w_in, epilogue)))
    if name is None or (needs_grad and name not in OPS_WITH_FUSED_BACKWARD):
        return composed_conv_chain(x, w_in, w_dw, norm, b_in, gelu_in, b_dw, epilogue, w_out,
                                   backend)
    nw, nb, eps = norm if norm is not None else (None, None, 0.0)
    return library_op("conv_chain_fwd", name)(x, nw, nb, eps, w_in, b_in, gelu_in, w_dw, b_dw,
                                              epilogue, w_out)
