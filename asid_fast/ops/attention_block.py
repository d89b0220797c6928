"""The attention half of ASID's SLA/SGA blocks as one operator: LayerNorm, projection, window
attention, output projection and residual.

Layout: x is a channels-last (B, H, W, d) map with a unit channel stride (a channel slice of a
wider map is read in place), H and W multiples of ``window``; windows as in
:mod:`asid_fast.ops.window_attention` (``mode`` "meso" or "global"); attn is
(B H/w W/w, w², w²).

Operators (``asid_fast::<name>``: the extension's CPU kernel; ``asid_fast::triton_<name>``: the
Triton kernel, one program per window):

* ``attention_block_fwd(x, norm_weight, norm_bias, eps, w_qkv, bias?, w_out, mode, window, scale)
  -> (y, attn)``: q, k, v = LN(x) W_qkvᵀ split in three (W_qkv (3d, d)), attn = softmax(scale
  q kᵀ + bias), y = x + (attn v) W_outᵀ (W_out (d, d)): block0's SLAk/SGAk;
* ``shared_attention_block_fwd(x, norm_weight, norm_bias, eps, w_v, attn, w_out, mode, window)
  -> y``: y = x + (attn (LN(x) W_vᵀ)) W_outᵀ with a stored attn: the sharing groups' blocks.

The CPU kernel gathers each window's pixels of x once and keeps LayerNorm, q, k, v and the
attention output in per-window tiles, writing only y and attn, where the composition writes and
reads q, k, v and the attention output as whole maps. Where torch allows bf16 for float32
matmuls on the CPU and the CPU has AVX512-BF16 (as conv_chain's; csrc/cpu/bf16_products.h), its
products (projections, scores, attn v, output projection) take bf16 inputs with float32 sums.

Backward: recomputed through the composition (:func:`composed_attention_block`) under autograd;
the op saves its inputs only. The public functions run the op at inference (nothing needs a
gradient) where a compiled backend implements it, and the composition of the per-step ops on the
requested backend otherwise (training saves the composition's activations). FLOPs: 2 per
multiply-add of the projections and the attention products.
"""
from __future__ import annotations

import torch

from . import _checks
from ._registry import OpDef, compiled_backend, define, library_op, recomputing_autograd
from .conv_chain import conv_chain
from .linear import linear
from .window_attention import shared_window_attention, window_attention

__all__ = ["attention_block", "shared_attention_block"]
FAMILY = "attention_block"
TRITON_MAX_TOKENS = 64  # kernels/attention_block.py: a window's token x token scores in one tile


def composed_attention_block(x, norm, w_qkv, bias, w_out, mode, window, scale, backend):
    """(y, attn) of ``attention_block_fwd`` by the per-step ops on ``backend``."""
    q, k, v = conv_chain(x, w_qkv, None, norm=norm, backend=backend).chunk(3, dim=-1)
    o, attn = window_attention(q, k, v, bias, mode=mode, window=window, scale=scale,
                               backend=backend)
    return linear([o], w_out, None, x, backend=backend), attn


def composed_shared_attention_block(x, norm, w_v, attn, w_out, mode, window, backend):
    """y of ``shared_attention_block_fwd`` by the per-step ops on ``backend``."""
    v = conv_chain(x, w_v, None, norm=norm, backend=backend)
    o = shared_window_attention(attn, v, mode=mode, window=window, backend=backend)
    return linear([o], w_out, None, x, backend=backend)


def _op_composition(backend):
    def run(x, norm_weight, norm_bias, eps, w_qkv, bias, w_out, mode, window, scale):
        return composed_attention_block(x, (norm_weight, norm_bias, eps), w_qkv, bias, w_out,
                                        mode, window, scale, backend)
    return run


def _shared_op_composition(backend):
    def run(x, norm_weight, norm_bias, eps, w_v, attn, w_out, mode, window):
        return composed_shared_attention_block(x, (norm_weight, norm_bias, eps), w_v, attn,
                                               w_out, mode, window, backend)
    return run


def _limits(backend, tokens, dim):
    if backend == "triton" and tokens > TRITON_MAX_TOKENS:
        return f"its kernel holds a window in one tile of {TRITON_MAX_TOKENS} tokens, got {tokens}"
    return None


def _size(x, nw, nb, eps, w_qkv, bias, w_out, mode, window, scale):
    return window * window, x.shape[-1]


def _shared_size(x, nw, nb, eps, w_v, attn, w_out, mode, window):
    return window * window, x.shape[-1]


def _windows(x_shape, window):
    b, h, w, _ = x_shape
    return b * (h // window) * (w // window)


def _flops(x_shape, in_rows, window, attention_products):
    """Projections (in_rows x d, then d x d) per pixel and the (w² x w²) x (w² x d) products."""
    b, h, w, d = x_shape
    n = window * window
    products = attention_products * _windows(x_shape, window) * n * n * d
    return 2 * b * h * w * d * (in_rows + d) + 2 * products


def _fake(x, norm_weight, norm_bias, eps, w_qkv, bias, w_out, mode, window, scale):
    n = window * window
    return x.new_empty(x.shape), x.new_empty((_windows(x.shape, window), n, n))


_setup, _backward = recomputing_autograd(_op_composition("auto"))
_shared_setup, _shared_backward = recomputing_autograd(_shared_op_composition("auto"))

define(OpDef(
    name="attention_block_fwd", family=FAMILY, backends=("triton", "cpu"),
    tensor_core_backends=("triton",),
    schema="(Tensor x, Tensor norm_weight, Tensor norm_bias, float eps, Tensor w_qkv, "
           "Tensor? bias, Tensor w_out, str mode, int window, float scale) "
           "-> (Tensor y, Tensor attn)",
    fake=_fake, reference=_op_composition("reference"), backward=_backward,
    setup_context=_setup, size=_size, limits=_limits,
    flops=lambda x, nw, nb, eps, w_qkv, bias, w_out, mode, window, scale, **_:
        _flops(x, w_qkv[0], window, 2),
))
define(OpDef(
    name="shared_attention_block_fwd", family=FAMILY, backends=("triton", "cpu"),
    tensor_core_backends=("triton",),
    schema="(Tensor x, Tensor norm_weight, Tensor norm_bias, float eps, Tensor w_v, "
           "Tensor attn, Tensor w_out, str mode, int window) -> Tensor",
    fake=lambda x, *_: x.new_empty(x.shape), reference=_shared_op_composition("reference"),
    backward=_shared_backward, setup_context=_shared_setup, size=_shared_size, limits=_limits,
    flops=lambda x, nw, nb, eps, w_v, attn, w_out, mode, window, **_:
        _flops(x, w_v[0], window, 1),
))


# ---- public functions --------------------------------------------------------------------------

def _check(x, norm, w_in, in_rows, w_out, mode, window):
    if mode not in _checks.MODES:
        raise ValueError(f"mode must be one of {_checks.MODES}, got {mode!r}")
    _checks.check_window(window)
    _checks.check_map("x", x, window)
    d = x.shape[-1]
    for name, t, shape in (("norm weight", norm[0], (d,)), ("norm bias", norm[1], (d,)),
                           ("w_in", w_in, (in_rows * d, d)), ("w_out", w_out, (d, d))):
        _checks.check_tensor(name, t)
        _checks.check_same("x", x, name, t)
        if tuple(t.shape) != shape:
            raise ValueError(f"{name} must be {shape} for x of shape {tuple(x.shape)}, "
                             f"got {tuple(t.shape)}")


def _fused(op_name, backend, tensors, x, window):
    """The compiled backend that runs ``op_name`` here, or None (then the composition runs)."""
    needs_grad = torch.is_grad_enabled() and any(t is not None and t.requires_grad
                                                 for t in tensors)
    if needs_grad:
        return None
    return compiled_backend(op_name, backend, x.device.type, x.dtype,
                            (window * window, x.shape[-1]))


def attention_block(x, norm, w_qkv, bias, w_out, *, mode="meso", window=8, scale=None,
                    backend="auto"):
    """y = x + (softmax(scale q kᵀ + bias) v) W_outᵀ with q, k, v = LN(x) W_qkvᵀ, and attn.

    x (B, H, W, d), d <= 64, unit channel stride; norm (weight (d,), bias (d,), eps); w_qkv
    (3d, d); bias (w², w²) or None; w_out (d, d); scale defaults to d**-0.5. Returns y
    (B, H, W, d) contiguous and attn (B H/w W/w, w², w²).
    """
    x, w_qkv, bias, w_out, nw, nb = _checks.autocast_inputs(x, w_qkv, bias, w_out, *norm[:2])
    norm = (nw, nb, norm[2])
    _check(x, norm, w_qkv, 3, w_out, mode, window)
    scale = _checks.check_bias_and_scale("x", x, bias, window, scale)
    name = _fused("attention_block_fwd", backend, (x, w_qkv, bias, w_out, nw, nb), x, window)
    if name is None:
        return composed_attention_block(x, norm, w_qkv, bias, w_out, mode, window, scale,
                                        backend)
    return library_op("attention_block_fwd", name)(x, nw, nb, norm[2], w_qkv, bias, w_out,
                                                   mode, window, scale)


def shared_attention_block(x, norm, w_v, attn, w_out, *, mode="meso", window=8,
                           backend="auto"):
    """y = x + (attn (LN(x) W_vᵀ)) W_outᵀ with a stored attn (B H/w W/w, w², w²).

    x (B, H, W, d), d <= 64, unit channel stride; norm (weight (d,), bias (d,), eps); w_v and
    w_out (d, d). Returns y (B, H, W, d) contiguous.
    """
    x, w_v, attn, w_out, nw, nb = _checks.autocast_inputs(x, w_v, attn, w_out, *norm[:2])
    norm = (nw, nb, norm[2])
    _check(x, norm, w_v, 1, w_out, mode, window)
    _checks.check_shared_window_attention(attn, x, mode, window)
    name = _fused("shared_attention_block_fwd", backend, (x, w_v, attn, w_out, nw, nb), x, window)
    if name is None:
        return composed_shared_attention_block(x, norm, w_v, attn, w_out, mode, window, backend)
    return library_op("shared_attention_block_fwd", name)(x, nw, nb, norm[2], w_v, attn, w_out,
                                                          mode, window)
