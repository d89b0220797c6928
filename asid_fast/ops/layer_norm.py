"""LayerNorm over the channel axis of a channels-last map (ASID's ``LayerNorm2d`` and the
``nn.LayerNorm`` of its attention blocks, which normalise the same axis).

Operators (``asid_fast::<prefix><name>``, prefix "" for the extension, "triton_" for Triton):

* ``layer_norm_fwd(x, weight, bias, eps) -> (y, mean, rstd)``: x (B, H, W, C) with a unit channel
  stride (rows may be strided, e.g. a channel slice of a wider map); y contiguous; mean and rstd
  (B, H, W) in the accumulation dtype (float64 for float64 x, else float32);
* ``layer_norm_bwd(grad_y, x, weight, mean, rstd) -> (dx, dweight, dbias)``.

Statistics and the affine step run in float32 for bf16/fp16 inputs. The extension's autograd is
registered in C++ (csrc/ops/autograd.cpp: no Python on the training path); the formula here
serves the Triton ops. No FLOP formula: like torch's counter, normalisation is not counted.
"""
from __future__ import annotations

import torch

from ..reference import functional as RF
from ._checks import FLOAT_DTYPES, autocast_inputs
from ._registry import OpDef, define, implementation

__all__ = ["layer_norm"]
FAMILY = "layer_norm"


def _acc_dtype(dtype):
    return torch.float64 if dtype == torch.float64 else torch.float32


def reference_layer_norm(x, weight, bias, eps):
    """The reference model's ``LayerNorm2d`` formula applied to a (B, H, W, C) map."""
    return RF.layer_norm2d(x.permute(0, 3, 1, 2), weight, bias, eps).permute(0, 2, 3, 1)


def _fwd_reference(x, weight, bias, eps):
    xs = x.to(_acc_dtype(x.dtype))
    mean = xs.mean(-1)
    rstd = torch.rsqrt((xs - mean[..., None]).pow(2).mean(-1) + eps)
    return reference_layer_norm(x, weight, bias, eps), mean, rstd


def _fwd_fake(x, weight, bias, eps):
    stats = x.new_empty(x.shape[:-1], dtype=_acc_dtype(x.dtype))
    return x.new_empty(x.shape), stats, torch.empty_like(stats)


def _fwd_setup(ctx, inputs, output):
    x, weight, _, _ = inputs
    _, mean, rstd = output
    ctx.save_for_backward(x, weight, mean, rstd)
    ctx.mark_non_differentiable(mean, rstd)  # saved for the backward only


def _fwd_backward(ops, ctx, grad_y, _grad_mean, _grad_rstd):
    x, weight, mean, rstd = ctx.saved_tensors
    dx, dw, db = ops.layer_norm_bwd(grad_y.contiguous(), x, weight, mean, rstd)
    return dx, dw, db, None


def _bwd_reference(grad_y, x, weight, mean, rstd):
    acc = _acc_dtype(x.dtype)
    xhat = (x.to(acc) - mean[..., None]) * rstd[..., None]
    gy = grad_y.to(acc)
    g = gy * weight.to(acc)
    dx = rstd[..., None] * (g - g.mean(-1, keepdim=True) - xhat * (g * xhat).mean(-1, keepdim=True))
    dweight, dbias = (gy * xhat).sum((0, 1, 2)), gy.sum((0, 1, 2))
    return dx.to(x.dtype), dweight.to(weight.dtype), dbias.to(weight.dtype)


define(OpDef(
    name="layer_norm_fwd", family=FAMILY,
    schema="(Tensor x, Tensor weight, Tensor bias, float eps) -> (Tensor y, Tensor mean, "
           "Tensor rstd)",
    fake=_fwd_fake, reference=_fwd_reference, cpp_autograd=True,
    backward=_fwd_backward, setup_context=_fwd_setup,
))
define(OpDef(
    name="layer_norm_bwd", family=FAMILY,
    schema="(Tensor grad_y, Tensor x, Tensor weight, Tensor mean, Tensor rstd) -> (Tensor dx, "
           "Tensor dweight, Tensor dbias)",
    fake=lambda grad_y, x, weight, mean, rstd: (x.new_empty(x.shape), torch.empty_like(weight),
                                                torch.empty_like(weight)),
    reference=_bwd_reference,
))


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
    x, weight, bias = autocast_inputs(x, weight, bias)
    _check(x, weight, bias)
    fn = implementation("layer_norm_fwd", backend, x.device.type, x.dtype)
    if fn is _fwd_reference:
        return reference_layer_norm(x, weight, bias, eps)
    if x.stride(-1) != 1:
        x = x.contiguous()
    return fn(x, weight, bias, eps)[0]
