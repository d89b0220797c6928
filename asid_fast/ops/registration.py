"""Autograd and FLOP-formula registration shared by every compiled/Triton backend.

A backend defines, per operator, a forward op and a backward op in the ``asid_fast`` torch.library
namespace with these schemas (``mode`` is "meso"/"global", or "window"/"cell" for channel
attention):

* ``<prefix>window_attention_fwd(Tensor q, Tensor k, Tensor v, Tensor? bias, str mode, int window,
  float scale) -> (Tensor out, Tensor attn)``
* ``<prefix>window_attention_bwd(Tensor grad_out, Tensor? grad_attn, Tensor q, Tensor k, Tensor v,
  Tensor attn, Tensor? bias, str mode, int window, float scale)
  -> (Tensor dq, Tensor dk, Tensor dv, Tensor dbias)`` — ``grad_attn`` (may be None) is added to
  dA before the softmax backward; dbias is (w*w, w*w) summed over windows (zeros if bias is None);
  dq/dk/dv are fresh contiguous (B, H, W, d) tensors.
* ``<prefix>shared_window_attention_fwd(Tensor attn, Tensor v, str mode, int window) -> Tensor``
* ``<prefix>shared_window_attention_bwd(Tensor grad_out, Tensor attn, Tensor v, str mode,
  int window) -> (Tensor dattn, Tensor dv)``
* ``<prefix>channel_attention_fwd(Tensor q, Tensor k, Tensor v, Tensor temperature, str mode,
  int window) -> (Tensor out, Tensor attn, Tensor rq, Tensor rk)`` — attn (G, C, C); rq, rk (G, C)
  are 1 / max(||row||, 1e-12) of the q and k channel rows (saved for backward).
* ``<prefix>channel_attention_bwd(Tensor grad_out, Tensor q, Tensor k, Tensor v,
  Tensor temperature, Tensor attn, Tensor rq, Tensor rk, str mode, int window)
  -> (Tensor dq, Tensor dk, Tensor dv, Tensor dtemperature)`` — dtemperature has one element.

``register_backend_ops(prefix)`` then attaches autograd to the forward ops and FLOP formulas to
all six, so every backend differentiates and counts FLOPs the same way.
"""
from __future__ import annotations

import torch
from torch.utils.flop_counter import register_flop_formula

NAMESPACE = "asid_fast"


def _op(name):
    """The op's OpOverloadPacket (what register_flop_formula accepts)."""
    return getattr(getattr(torch.ops, NAMESPACE), name)


# ---- FLOP formulas (2 FLOPs per multiply-add; softmax/normalisation not counted) ----------

def _window_matmul_flops(v_shape, window):
    """One (w*w x w*w) x (w*w x d) product per window: 2 * N * (w*w)^2 * d."""
    b, h, w, d = v_shape
    n = b * (h // window) * (w // window)
    return 2 * n * (window * window) ** 2 * d


def _channel_matmul_flops(v_shape):
    """One (C x n) x (n x C) product over all groups: 2 * B*H*W * C^2."""
    b, h, w, c = v_shape
    return 2 * b * h * w * c * c


# ---- autograd -------------------------------------------------------------------------------

def _window_setup(ctx, inputs, output):
    q, k, v, bias, mode, window, scale = inputs
    ctx.save_for_backward(q, k, v, output[1], bias)
    ctx.args = (mode, window, scale)
    ctx.has_bias = bias is not None


def _shared_setup(ctx, inputs, output):
    attn, v, mode, window = inputs
    ctx.save_for_backward(attn, v)
    ctx.args = (mode, window)


def _channel_setup(ctx, inputs, output):
    q, k, v, temperature, mode, window = inputs
    _, attn, rq, rk = output
    ctx.save_for_backward(q, k, v, temperature, attn, rq, rk)
    ctx.args = (mode, window)


def register_backend_ops(prefix: str = "") -> None:
    """Attach autograd and FLOP formulas to the six ``asid_fast::<prefix>...`` ops."""
    wa_fwd, wa_bwd = _op(prefix + "window_attention_fwd"), _op(prefix + "window_attention_bwd")
    sa_fwd = _op(prefix + "shared_window_attention_fwd")
    sa_bwd = _op(prefix + "shared_window_attention_bwd")
    ca_fwd, ca_bwd = _op(prefix + "channel_attention_fwd"), _op(prefix + "channel_attention_bwd")

    def window_backward(ctx, grad_out, grad_attn):
        q, k, v, attn, bias = ctx.saved_tensors
        dq, dk, dv, dbias = wa_bwd(grad_out.contiguous(), grad_attn, q, k, v, attn, bias, *ctx.args)
        return dq, dk, dv, (dbias if ctx.has_bias else None), None, None, None

    def shared_backward(ctx, grad_out):
        attn, v = ctx.saved_tensors
        dattn, dv = sa_bwd(grad_out.contiguous(), attn, v, *ctx.args)
        return dattn, dv, None, None

    def channel_backward(ctx, grad_out, _ga, _gq, _gk):
        q, k, v, temperature, attn, rq, rk = ctx.saved_tensors
        dq, dk, dv, dt = ca_bwd(grad_out.contiguous(), q, k, v, temperature, attn, rq, rk, *ctx.args)
        return dq, dk, dv, dt.reshape(temperature.shape), None, None

    torch.library.register_autograd(wa_fwd.default, window_backward, setup_context=_window_setup)
    torch.library.register_autograd(sa_fwd.default, shared_backward, setup_context=_shared_setup)
    torch.library.register_autograd(ca_fwd.default, channel_backward, setup_context=_channel_setup)

    @register_flop_formula(wa_fwd)
    def _(q_shape, k_shape, v_shape, *args, out_shape=None, **kwargs):
        return 2 * _window_matmul_flops(v_shape, args[2])  # QK^T and AV

    @register_flop_formula(wa_bwd)
    def _(go_shape, ga_shape, q_shape, k_shape, v_shape, *args, out_shape=None, **kwargs):
        return 4 * _window_matmul_flops(v_shape, args[3])  # dV, dA, dQ, dK

    @register_flop_formula(sa_fwd)
    def _(attn_shape, v_shape, mode, window, *args, out_shape=None, **kwargs):
        return _window_matmul_flops(v_shape, window)  # AV only

    @register_flop_formula(sa_bwd)
    def _(go_shape, attn_shape, v_shape, mode, window, *args, out_shape=None, **kwargs):
        return 2 * _window_matmul_flops(v_shape, window)  # dA, dV

    @register_flop_formula(ca_fwd)
    def _(q_shape, k_shape, v_shape, *args, out_shape=None, **kwargs):
        return 2 * _channel_matmul_flops(v_shape)  # q k^T and A v

    @register_flop_formula(ca_bwd)
    def _(go_shape, q_shape, k_shape, v_shape, *args, out_shape=None, **kwargs):
        return 4 * _channel_matmul_flops(v_shape)  # dV, dA, dQ, dK
