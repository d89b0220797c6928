"""Window attention (ASID's SLA/SGA), returning the attention matrix for sharing, and the
shared-attention apply (A·V with a stored A, QK^T skipped).

Layout: q, k, v are channels-last (B, H, W, d) maps with a unit channel stride (they may be
strided views of one (B, H, W, 3d) projection); H and W are multiples of ``window``; window
(X, Y) token (i, j) is pixel (w X + i, w Y + j) for ``mode="meso"`` and (i H/w + X, j W/w + Y)
for ``mode="global"`` (:mod:`asid_fast.reference.functional`). attn is (B H/w W/w, w², w²),
windows ordered batch, X, Y, softmax over the last axis.

Operators (``asid_fast::<prefix><name>``, prefix "" for the extension, "triton_" for Triton):

* ``window_attention_fwd(q, k, v, bias?, mode, window, scale) -> (out, attn)``:
  attn = softmax(scale q kᵀ + bias), out = attn v;
* ``window_attention_bwd(grad_out, grad_attn?, q, k, v, attn, bias?, mode, window, scale)
  -> (dq, dk, dv, dbias)``: grad_attn (may be None) is added to dattn before the softmax
  backward; dbias (w², w²) is summed over windows (zeros without a bias);
* ``shared_window_attention_fwd(attn, v, mode, window) -> out``;
* ``shared_window_attention_bwd(grad_out, attn, v, mode, window) -> (dattn, dv)``.

Outputs are fresh contiguous tensors. FLOPs: 2 per multiply-add of the products; the softmax is
not counted.
"""
from __future__ import annotations

import torch

from ..reference import functional as RF
from . import _checks
from ._registry import OpDef, define, implementation, reference_gradients

__all__ = ["window_attention", "shared_window_attention"]
FAMILY = "window_attention"
CUDA_MAX_TOKENS, CUDA_MAX_DIM = 64, 64  # csrc/cuda/window_attention.cu: one window per block
TRITON_MAX_TOKENS = 128  # kernels/window_attention.py: one window per tile


def _limits(backend, tokens, dim):
    if backend == "cuda" and (tokens > CUDA_MAX_TOKENS or dim > CUDA_MAX_DIM):
        return (f"its kernels take windows of at most {CUDA_MAX_TOKENS} tokens and d <= "
                f"{CUDA_MAX_DIM}, got {tokens} tokens, d={dim}")
    if backend == "triton" and tokens > TRITON_MAX_TOKENS:
        return f"its kernels hold a window in one tile of {TRITON_MAX_TOKENS} tokens, got {tokens}"
    return None


def _fwd_size(q, k, v, bias, mode, window, scale):
    return window * window, q.shape[-1]


def _bwd_size(grad_out, grad_attn, q, k, v, attn, bias, mode, window, scale):
    return window * window, q.shape[-1]


def _shared_fwd_size(attn, v, mode, window):
    return window * window, v.shape[-1]


def _shared_bwd_size(grad_out, attn, v, mode, window):
    return window * window, v.shape[-1]


def _windows(x, window):
    b, h, w, _ = x.shape
    return b * (h // window) * (w // window)


def _matmul_flops(v_shape, window):
    """One (w² x w²) x (w² x d) product per window."""
    b, h, w, d = v_shape
    return 2 * b * (h // window) * (w // window) * (window * window) ** 2 * d


# ---- window_attention_fwd / _bwd ---------------------------------------------------------------

def _fwd_reference(q, k, v, bias, mode, window, scale):
    return RF.window_attention(q, k, v, bias, mode=mode, window=window, scale=scale)


def _fwd_fake(q, k, v, bias, mode, window, scale):
    n = window * window
    return q.new_empty(q.shape), q.new_empty((_windows(q, window), n, n))


def _fwd_setup(ctx, inputs, output):
    q, k, v, bias, mode, window, scale = inputs
    ctx.save_for_backward(q, k, v, output[1], bias)
    ctx.args = (mode, window, scale)
    ctx.has_bias = bias is not None


def _fwd_backward(ops, ctx, grad_out, grad_attn):
    q, k, v, attn, bias = ctx.saved_tensors
    dq, dk, dv, dbias = ops.window_attention_bwd(grad_out.contiguous(), grad_attn, q, k, v, attn,
                                                 bias, *ctx.args)
    return dq, dk, dv, (dbias if ctx.has_bias else None), None, None, None


def _bwd_reference(grad_out, grad_attn, q, k, v, attn, bias, mode, window, scale):
    def fwd(q, k, v, bias):
        return RF.window_attention(q, k, v, bias, mode=mode, window=window, scale=scale)
    dq, dk, dv, dbias = reference_gradients(fwd, (q, k, v, bias), (grad_out, grad_attn))
    n = window * window
    return dq, dk, dv, dbias if dbias is not None else q.new_zeros((n, n))


def _bwd_fake(grad_out, grad_attn, q, k, v, attn, bias, mode, window, scale):
    n = window * window
    return (q.new_empty(q.shape), q.new_empty(q.shape), q.new_empty(q.shape), q.new_empty((n, n)))


define(OpDef(
    name="window_attention_fwd", family=FAMILY,
    schema="(Tensor q, Tensor k, Tensor v, Tensor? bias, str mode, int window, float scale) "
           "-> (Tensor out, Tensor attn)",
    fake=_fwd_fake, reference=_fwd_reference, size=_fwd_size, limits=_limits,
    backward=_fwd_backward, setup_context=_fwd_setup,
    flops=lambda q, k, v, bias, mode, window, scale, **_: 2 * _matmul_flops(v, window),
))
define(OpDef(
    name="window_attention_bwd", family=FAMILY,
    schema="(Tensor grad_out, Tensor? grad_attn, Tensor q, Tensor k, Tensor v, Tensor attn, "
           "Tensor? bias, str mode, int window, float scale) "
           "-> (Tensor dq, Tensor dk, Tensor dv, Tensor dbias)",
    fake=_bwd_fake, reference=_bwd_reference, size=_bwd_size, limits=_limits,
    flops=lambda go, ga, q, k, v, attn, bias, mode, window, scale, **_:
        4 * _matmul_flops(v, window),
))


# ---- shared_window_attention_fwd / _bwd --------------------------------------------------------

def _shared_fwd_reference(attn, v, mode, window):
    return RF.shared_window_attention(attn, v, mode=mode, window=window)


def _shared_setup(ctx, inputs, output):
    attn, v, mode, window = inputs
    ctx.save_for_backward(attn, v)
    ctx.args = (mode, window)


def _shared_backward(ops, ctx, grad_out):
    attn, v = ctx.saved_tensors
    dattn, dv = ops.shared_window_attention_bwd(grad_out.contiguous(), attn, v, *ctx.args)
    return dattn, dv, None, None


def _shared_bwd_reference(grad_out, attn, v, mode, window):
    def fwd(attn, v):
        return (RF.shared_window_attention(attn, v, mode=mode, window=window),)
    return tuple(reference_gradients(fwd, (attn, v), (grad_out,)))


define(OpDef(
    name="shared_window_attention_fwd", family=FAMILY,
    schema="(Tensor attn, Tensor v, str mode, int window) -> Tensor",
    fake=lambda attn, v, mode, window: v.new_empty(v.shape),
    reference=_shared_fwd_reference, size=_shared_fwd_size, limits=_limits,
    backward=_shared_backward, setup_context=_shared_setup,
    flops=lambda attn, v, mode, window, **_: _matmul_flops(v, window),
))
define(OpDef(
    name="shared_window_attention_bwd", family=FAMILY,
    schema="(Tensor grad_out, Tensor attn, Tensor v, str mode, int window) "
           "-> (Tensor dattn, Tensor dv)",
    fake=lambda grad_out, attn, v, mode, window: (v.new_empty(attn.shape), v.new_empty(v.shape)),
    reference=_shared_bwd_reference, size=_shared_bwd_size, limits=_limits,
    flops=lambda go, attn, v, mode, window, **_: 2 * _matmul_flops(v, window),
))


# ---- public functions --------------------------------------------------------------------------

def window_attention(q, k, v, bias=None, *, mode="meso", window=8, scale=None, backend="auto"):
    """Fused window attention, returning the attention matrix for sharing.

    q, k, v: (B, H, W, d), H and W multiples of ``window``, d <= 64, unit channel stride (may be
    strided views of one (B, H, W, 3d) projection). bias: (w², w²) or None. scale defaults to
    d**-0.5 and multiplies q. Returns out (B, H, W, d) and attn (B H/w W/w, w², w²).
    """
    q, k, v, bias = _checks.autocast_inputs(q, k, v, bias)
    scale = _checks.check_window_attention(q, k, v, bias, mode, window, scale)
    fn = implementation("window_attention_fwd", backend, q.device.type, q.dtype,
                        _fwd_size(q, k, v, bias, mode, window, scale))
    return fn(q, k, v, bias, mode, window, scale)


def shared_window_attention(attn, v, *, mode="meso", window=8, backend="auto"):
    """Apply a stored attention matrix: attn (B H/w W/w, w², w²), v (B, H, W, d) -> (B, H, W, d)."""
    attn, v = _checks.autocast_inputs(attn, v)
    _checks.check_shared_window_attention(attn, v, mode, window)
    fn = implementation("shared_window_attention_fwd", backend, v.device.type, v.dtype,
                        _shared_fwd_size(attn, v, mode, window))
    return fn(attn, v, mode, window)
