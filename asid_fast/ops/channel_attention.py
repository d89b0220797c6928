"""Channel attention per pixel group (ASID's CAM): C x C attention between L2-normalised channel
rows of q and k, applied to v.

Layout: q, k, v are channels-last (B, H, W, C) maps with a unit channel stride, H and W
multiples of ``window``. ``mode="window"`` groups the pixels of each w x w window (n = w²);
``mode="cell"`` groups the pixels at one offset (i, j) of every cell (n = H W / w²)
(:func:`asid_fast.reference.functional.channel_group_partition`).

Operators (``asid_fast::<prefix><name>``, prefix "" for the extension, "triton_" for Triton):

* ``channel_attention_fwd(q, k, v, temperature, mode, window) -> (out, attn, rq, rk)``: per
  group, rq, rk (G, C) = 1 / max(||row||, 1e-12) of the q and k channel rows, attn (G, C, C) =
  softmax(temperature (rq q)(rk k)ᵀ), out = attn v. attn, rq, rk are float32 for half-precision
  maps (saved for the backward);
* ``channel_attention_bwd(grad_out, q, k, v, temperature, attn, rq, rk, mode, window)
  -> (dq, dk, dv, dtemperature)``: dtemperature has temperature's shape.

Where torch allows bf16 for float32 matmuls on the CPU and the CPU has AVX512-BF16 (as
conv_chain's; csrc/cpu/bf16_products.h), the CPU forward's two products take bf16 inputs with
float32 sums. FLOPs: 2 per multiply-add of the two C x C x n products per group.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..reference import functional as RF
from . import _checks
from ._registry import OpDef, define, implementation, reference_gradients

__all__ = ["channel_attention"]
FAMILY = "channel_attention"
CUDA_MAX_CHANNELS = 64  # csrc/cuda/channel_attention.cu
TRITON_MAX_CHANNELS = 128  # kernels/channel_attention.py: the C x C matrix in one tile


def _limits(backend, channels, groups, members):
    limit = {"cuda": CUDA_MAX_CHANNELS, "triton": TRITON_MAX_CHANNELS}.get(backend)
    if limit is not None and channels > limit:
        return f"its kernels take at most {limit} channels, got {channels}"
    return None


def _cuda_order(channels, groups, members):
    """Triton first for fewer groups than pixels per group (the cell groups of an image larger than
    64 x 64 at batch 1): the CUDA kernel runs one block per group and streams its pixels, slower
    there than Triton's tiles in half types; for many short groups (windows, training crops) the
    CUDA kernels are as fast or faster, backward included. Triton is a tensor-core backend: in
    IEEE float32 its tiles lose to the CUDA kernel, so "auto" leaves it out
    (bench/results/20261204T165354Z_h200/NOTES.md)."""
    if members > groups:
        return ("triton", "cuda", "reference")
    return None


def _fwd_size(q, k, v, temperature, mode, window):
    groups = _groups(q, mode, window)
    return (q.shape[-1], groups, q.shape[0] * q.shape[1] * q.shape[2] // groups)


def _bwd_size(grad_out, q, k, v, temperature, attn, rq, rk, mode, window):
    return _fwd_size(q, k, v, temperature, mode, window)


def _stats_dtype(dtype):
    return torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype


def _groups(q, mode, window):
    b, h, w, _ = q.shape
    return b * window * window if mode == "cell" else b * (h // window) * (w // window)


def _matmul_flops(q_shape):
    b, h, w, c = q_shape
    return 2 * b * h * w * c * c


def _fwd_reference(q, k, v, temperature, mode, window):
    """:func:`asid_fast.reference.functional.channel_attention`, step by step, keeping the
    attention matrix and the inverse norms (in the statistics dtype)."""
    h, w = q.shape[1], q.shape[2]
    qt = RF.channel_group_partition(q, mode, window)
    kt = RF.channel_group_partition(k, mode, window)
    vt = RF.channel_group_partition(v, mode, window)
    qn, kn = F.normalize(qt, dim=-2, eps=1e-12), F.normalize(kt, dim=-2, eps=1e-12)
    attn = (qn.transpose(-2, -1) @ kn * temperature.reshape(())).softmax(dim=-1)
    out = RF.channel_group_merge(vt @ attn.transpose(-2, -1), mode, window, h, w)
    stats = _stats_dtype(q.dtype)
    rq = 1 / qt.to(stats).norm(dim=-2).clamp_min(1e-12)
    rk = 1 / kt.to(stats).norm(dim=-2).clamp_min(1e-12)
    return out, attn.to(stats), rq, rk


def _fwd_fake(q, k, v, temperature, mode, window):
    g, c = _groups(q, mode, window), q.shape[-1]
    stats = _stats_dtype(q.dtype)
    return (q.new_empty(q.shape), q.new_empty((g, c, c), dtype=stats),
            q.new_empty((g, c), dtype=stats), q.new_empty((g, c), dtype=stats))


def _fwd_setup(ctx, inputs, output):
    q, k, v, temperature, mode, window = inputs
    _, attn, rq, rk = output
    ctx.save_for_backward(q, k, v, temperature, attn, rq, rk)
    ctx.mark_non_differentiable(attn, rq, rk)  # saved for the backward only
    ctx.args = (mode, window)


def _fwd_backward(ops, ctx, grad_out, _grad_attn, _grad_rq, _grad_rk):
    q, k, v, temperature, attn, rq, rk = ctx.saved_tensors
    dq, dk, dv, dt = ops.channel_attention_bwd(grad_out.contiguous(), q, k, v, temperature, attn,
                                               rq, rk, *ctx.args)
    return dq, dk, dv, dt, None, None


def _bwd_reference(grad_out, q, k, v, temperature, attn, rq, rk, mode, window):
    def fwd(q, k, v, temperature):
        return (RF.channel_attention(q, k, v, temperature, mode=mode, window=window),)
    return tuple(reference_gradients(fwd, (q, k, v, temperature), (grad_out,)))


def _bwd_fake(grad_out, q, k, v, temperature, attn, rq, rk, mode, window):
    return (q.new_empty(q.shape), q.new_empty(q.shape), q.new_empty(q.shape),
            temperature.new_empty(temperature.shape))


define(OpDef(
    name="channel_attention_fwd", family=FAMILY,
    schema="(Tensor q, Tensor k, Tensor v, Tensor temperature, str mode, int window) "
           "-> (Tensor out, Tensor attn, Tensor rq, Tensor rk)",
    fake=_fwd_fake, reference=_fwd_reference, size=_fwd_size, limits=_limits,
    order={"cuda": _cuda_order}, tensor_core_backends=("triton",),
    backward=_fwd_backward, setup_context=_fwd_setup,
    flops=lambda q, k, v, *_, **__: 2 * _matmul_flops(q),
))
define(OpDef(
    name="channel_attention_bwd", family=FAMILY,
    schema="(Tensor grad_out, Tensor q, Tensor k, Tensor v, Tensor temperature, Tensor attn, "
           "Tensor rq, Tensor rk, str mode, int window) "
           "-> (Tensor dq, Tensor dk, Tensor dv, Tensor dtemperature)",
    fake=_bwd_fake, reference=_bwd_reference, size=_bwd_size, limits=_limits,
    order={"cuda": _cuda_order}, tensor_core_backends=("triton",),
    flops=lambda go, q, *_, **__: 4 * _matmul_flops(q),
))


def channel_attention(q, k, v, temperature, *, mode="window", window=8, backend="auto"):
    """Channel attention per pixel group (``mode`` "window" or "cell"), channels-last.

    q, k, v: (B, H, W, C); temperature: one element. Returns out (B, H, W, C).
    """
    q, k, v, temperature = _checks.autocast_inputs(q, k, v, temperature)
    _checks.check_channel_attention(q, k, v, temperature, mode, window)
    fn = implementation("channel_attention_fwd", backend, q.device.type, q.dtype,
                        _fwd_size(q, k, v, temperature, mode, window))
    return fn(q, k, v, temperature, mode, window)[0]
