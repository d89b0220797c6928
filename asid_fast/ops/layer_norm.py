"""Fused LayerNorm over the channel axis of a channels-last map (ASID's ``LayerNorm2d`` and the
``nn.LayerNorm`` of its attention blocks, which normalise the same axis).

Compiled/Triton ops (schemas; ``prefix`` is "" for the C++/CUDA extension, "triton_" for Triton):

* ``asid_fast::<prefix>fused_layer_norm_fwd(Tensor x, Tensor weight, Tensor bias, float eps)
  -> (Tensor y, Tensor mean, Tensor rstd)`` — x (B, H, W, C) with a unit channel stride (rows may
  be strided, e.g. a channel slice of a wider map); y contiguous (B, H, W, C); mean and rstd
  (B, H, W) in the accumulation dtype (float64 for float64 input, else float32).
* ``asid_fast::<prefix>fused_layer_norm_bwd(Tensor grad_y, Tensor x, Tensor weight, Tensor mean,
  Tensor rstd) -> (Tensor dx, Tensor dweight, Tensor dbias)`` — dweight/dbias in weight's dtype.

The forward op's autograd calls the backward op: registered in C++ for the extension's ops
(cpu/fused_autograd.cpp: no Python on the training path), here for the Triton ones.

Statistics and the affine step are computed in float32 for bf16/fp16 inputs (upcast), in the
input dtype otherwise. No FLOP formula: like torch's flop counter, normalisation is not counted.
"""
from __future__ import annotations

import torch

from ..reference import functional as RF
from . import _fused_dispatch
from ._checks import FLOAT_DTYPES

FAMILY = "fused_layer_norm"


def _acc_dtype(dtype):
    return torch.float64 if dtype == torch.float64 else torch.float32


def _fake_fwd(x, weight, bias, eps):
    stats = x.new_empty(x.shape[:-1], dtype=_acc_dtype(x.dtype))
    return x.new_empty(x.shape), stats, torch.empty_like(stats)


def _fake_bwd(grad_y, x, weight, mean, rstd):
    return x.new_empty(x.shape), torch.empty_like(weight), torch.empty_like(weight)


def _setup(ctx, inputs, output):
    x, weight, _, _ = inputs
    _, mean, rstd = output
    ctx.save_for_backward(x, weight, mean, rstd)


def register_ops(prefix: str) -> None:
    """Attach fake implementations and autograd to ``asid_fast::<prefix>fused_layer_norm_*``."""
    bwd = getattr(torch.ops.asid_fast, prefix + FAMILY + "_bwd").default

    def backward(ctx, grad_y, _gmean, _grstd):
        x, weight, mean, rstd = ctx.saved_tensors
        dx, dw, db = bwd(grad_y.contiguous(), x, weight, mean, rstd)
        return dx, dw, db, None

    _fused_dispatch.register_op(prefix + FAMILY + "_fwd", _fake_fwd, backward, _setup)
    _fused_dispatch.register_op(prefix + FAMILY + "_bwd", _fake_bwd)


def reference_layer_norm(x, weight, bias, eps):
    """The reference model's ``LayerNorm2d`` formula applied to a (B, H, W, C) map."""
    return RF.layer_norm2d(x.permute(0, 3, 1, 2), weight, bias, eps).permute(0, 2, 3, 1)


def _check(x, weight, bias):
    if not isinstance(x, torch.Tensor) or x.dtype not in FLOAT_DTYPES:
        raise TypeError(f"x must be a float32/float64/bfloat16/float16 tensor, got {x!r:.80}")
    if x.dim() != 4:
        raise ValueError(f"x must be a (B, H, W, C) channels-last map, got shape {tuple(x.shape)}")
    c = x.shape[-1]
    for name, t in (("weight", weight), ("bias", bias)):
        if not isinstance(t, torch.Tensor) or tuple(t.shape) != (c,):
            raise ValueError(f"{name} must be a ({c},) tensor for x of shape {tuple(x.shape)}, "
                             f"got {getattr(t, 'shape', t)}")
        if t.device != x.device or t.dtype != x.dtype:
            raise ValueError(f"{name} is {t.dtype} on {t.device}, x is {x.dtype} on {x.device}")


def layer_norm(x, weight, bias, eps, *, backend="auto"):
    """LayerNorm over the last (channel) axis of a (B, H, W, C) map -> contiguous (B, H, W, C).

    Rows may be strided views (a channel slice of a wider channels-last map) as long as the
    channel stride is 1; other layouts are made contiguous first.
    """
    _check(x, weight, bias)
    impl = _fused_dispatch.resolve(backend, x.device.type, FAMILY, x.dtype)
    if impl == "reference":
        return reference_layer_norm(x, weight, bias, eps)
    if x.stride(-1) != 1:
        x = x.contiguous()
    prefix = "triton_" if impl == "triton" else ""
    return getattr(torch.ops.asid_fast, prefix + FAMILY + "_fwd")(x, weight, bias, eps)[0]


_fused_dispatch.add_register_hook(FAMILY, register_ops)
if hasattr(torch.ops.asid_fast, FAMILY + "_fwd"):  # extension already loaded (torch imports this
    register_ops("")  # module for the ops' fake kernels, see cpu/fused_op_schemas.cpp)
