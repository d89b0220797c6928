"""The per-pixel / depthwise convolution chain at the heart of ASID's blocks, on channels-last
(B, H, W, K) maps:

    a   = LayerNorm(x) if norm else x
    p   = a W_in^T (+ b_in), then GELU if gelu_in                 (n_in channels)
    m   = epilogue(dwconv3x3(p, w_dw) (+ b_dw)), or p if w_dw is None  ("none" | "gelu" | "gate")
    out = x + m W_out^T if w_out is given, else m

It is the gated FFN (norm, project_in, dwconv, gate, project_out, residual), the head of the
local module (conv, GELU, dwconv, GELU), the q/k/v projection of channel attention (norm, 1x1,
dwconv) and that of spatial attention (norm, 1x1).

On CPU tensors with the extension built, and when no gradient is needed, the whole chain runs as
one operator, ``asid_fast::fused_conv_chain_fwd(Tensor x, Tensor? norm_weight, Tensor? norm_bias,
float eps, Tensor w_in, Tensor? b_in, bool gelu_in, Tensor? w_dw, Tensor? b_dw, str epilogue,
Tensor? w_out) -> Tensor``: it streams the image row by row, keeping the 1x1 output of the three
rows under the 3x3 kernel in a ring buffer, so no intermediate map touches memory. Its autograd
recomputes through the composition below (used by the model only where nothing needs a
gradient: training runs the composition, which saves its activations).

Everywhere else the chain is the composition of the fused ops (:func:`layer_norm`,
:func:`depthwise_conv3x3`) and matmuls, on the requested backend; with ``backend="reference"``
it is exactly what the reference model computes.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from . import _fused_dispatch
from .depthwise_conv import depthwise_conv3x3
from .dispatch import BACKENDS
from .layer_norm import layer_norm

FAMILY = "fused_conv_chain"


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


def _fake(x, norm_weight, norm_bias, eps, w_in, b_in, gelu_in, w_dw, b_dw, epilogue, w_out):
    n_mid = w_in.shape[0] // 2 if epilogue == "gate" else w_in.shape[0]
    return x.new_empty((*x.shape[:3], x.shape[3] if w_out is not None else n_mid))


def _setup(ctx, inputs, output):
    x, norm_weight, norm_bias, eps, w_in, b_in, gelu_in, w_dw, b_dw, epilogue, w_out = inputs
    ctx.save_for_backward(x, norm_weight, norm_bias, w_in, b_in, w_dw, b_dw, w_out)
    ctx.args = (eps, gelu_in, epilogue)


def _backward(ctx, grad):
    """Gradients by recomputing the chain as the composition of the compiled ops."""
    eps, gelu_in, epilogue = ctx.args
    leaves = [t.detach().requires_grad_() if t is not None else None for t in ctx.saved_tensors]
    x, nw, nb, w_in, b_in, w_dw, b_dw, w_out = leaves
    with torch.enable_grad():
        out = composed_conv_chain(x, w_in, w_dw, (nw, nb, eps) if nw is not None else None, b_in,
                                  gelu_in, b_dw, epilogue, w_out, "cpu")
        present = [t for t in leaves if t is not None]
        grads = iter(torch.autograd.grad(out, present, grad))
    dx, dnw, dnb, dw_in, db_in, dw_dw, db_dw, dw_out = (next(grads) if t is not None else None
                                                        for t in leaves)
    return dx, dnw, dnb, None, dw_in, db_in, None, dw_dw, db_dw, None, dw_out


def register_ops(prefix: str = "") -> None:
    """Attach the fake kernel and autograd to ``asid_fast::fused_conv_chain_fwd``."""
    _fused_dispatch.register_op(FAMILY + "_fwd", _fake, _backward, _setup)


def conv_chain(x, w_in, w_dw, *, norm=None, b_in=None, gelu_in=False, b_dw=None,
               epilogue="none", w_out=None, backend="auto"):
    """The chain of the module docstring. x (B, H, W, K) with unit channel stride; w_in (n_in, K);
    w_dw (n_in, 1, 3, 3) or None (then epilogue "none"); norm (weight, bias, eps) or None; b_in,
    b_dw (n_in,) or None; w_out (K, n_mid) or None. Returns a contiguous (B, H, W, K if w_out
    else n_mid) map."""
    if w_dw is None and (epilogue != "none" or b_dw is not None):
        raise ValueError("without w_dw the epilogue must be 'none' and b_dw None")
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    tensors = (x, w_in, w_dw, b_in, b_dw, w_out) + (tuple(norm[:2]) if norm is not None else ())
    needs_grad = torch.is_grad_enabled() and any(t is not None and t.requires_grad
                                                 for t in tensors)
    if needs_grad or x.stride(-1) != 1 or not _fused_dispatch.cpu_op_usable(
            backend, x.device.type, FAMILY, x.dtype):
        return composed_conv_chain(x, w_in, w_dw, norm, b_in, gelu_in, b_dw, epilogue, w_out,
                                   backend)
    nw, nb, eps = norm if norm is not None else (None, None, 0.0)
    return torch.ops.asid_fast.fused_conv_chain_fwd(x, nw, nb, eps, w_in, b_in, gelu_in, w_dw,
                                                    b_dw, epilogue, w_out)


_fused_dispatch.add_register_hook(FAMILY, register_ops)
if hasattr(torch.ops.asid_fast, FAMILY + "_fwd"):  # extension already loaded (torch imports this
    register_ops()  # module for the op's fake kernel, see cpu/fused_op_schemas.cpp)
