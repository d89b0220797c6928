"""Depthwise 3x3 convolution (zero padding 1, stride 1) on channels-last maps, with the
element-wise step that follows it in ASID folded in (``epilogue``):

* ``"none"``: the convolution (``qkv_dwconv`` of the channel attention);
* ``"gelu"``: GELU(conv) (the local module's ``dw 3x3 -> GELU``);
* ``"gate"``: GELU(a) * b with a, b the first and second channel halves of the convolution (the
  gated FFN tail ``dwconv -> chunk -> gelu(a) * b``), C/2 output channels.

Operators (``asid_fast::<prefix><name>``, prefix "" for the extension, "triton_" for Triton):

* ``depthwise_conv3x3_fwd(x, weight, bias?, epilogue) -> out``: x (B, H, W, C) with a unit channel
  stride (rows may be strided), weight (C, 1, 3, 3) as ``nn.Conv2d`` stores it, bias (C,) or
  None; out contiguous (B, H, W, C or C/2);
* ``depthwise_conv3x3_bwd(grad_out, x, weight, bias?, epilogue) -> (dx, dweight, dbias)``:
  recomputes the convolution for the epilogue's derivative (only x is saved); dbias is the
  gradient a bias would get (also when bias is None, then dropped by autograd).

Accumulation and GELU run in float32 for bf16/fp16 inputs. The extension's autograd is
registered in C++ (csrc/ops/autograd.cpp); the formula here serves the Triton ops. On CUDA,
"auto" runs cuDNN (the reference): on an H200 it beat both of our kernels at every shape ASID
uses (bench/results/20261126T062955Z_h200/NOTES.md). FLOPs: 2 x 9 per output element of the
convolution forward, twice that backward (dx and dweight).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ._checks import FLOAT_DTYPES, autocast_inputs
from ._registry import OpDef, define, implementation, reference_gradients

__all__ = ["depthwise_conv3x3"]
FAMILY = "depthwise_conv3x3"
EPILOGUES = ("none", "gelu", "gate")


def _out_channels(c, epilogue):
    return c // 2 if epilogue == "gate" else c


def _conv_flops(x_shape):
    b, h, w, c = x_shape
    return 2 * 9 * b * h * w * c


def reference_depthwise_conv3x3(x, weight, bias, epilogue):
    """What the reference model computes: ``nn.Conv2d`` depthwise 3x3, then the epilogue."""
    y = F.conv2d(x.permute(0, 3, 1, 2), weight, bias, padding=1, groups=x.shape[-1])
    if epilogue == "gelu":
        y = F.gelu(y)
    elif epilogue == "gate":
        a, b = y.chunk(2, dim=1)
        y = F.gelu(a) * b
    return y.permute(0, 2, 3, 1)


def _fwd_fake(x, weight, bias, epilogue):
    b, h, w, c = x.shape
    return x.new_empty((b, h, w, _out_channels(c, epilogue)))


def _fwd_setup(ctx, inputs, output):
    x, weight, bias, epilogue = inputs
    ctx.save_for_backward(x, weight, bias)
    ctx.epilogue = epilogue
    ctx.has_bias = bias is not None


def _fwd_backward(ops, ctx, grad_out):
    x, weight, bias = ctx.saved_tensors
    dx, dw, db = ops.depthwise_conv3x3_bwd(grad_out.contiguous(), x, weight, bias, ctx.epilogue)
    return dx, dw, (db if ctx.has_bias else None), None


def _bwd_reference(grad_out, x, weight, bias, epilogue):
    def fwd(x, weight, bias):
        return (reference_depthwise_conv3x3(x, weight, bias, epilogue),)
    bias = bias if bias is not None else weight.new_zeros(weight.shape[0])
    return tuple(reference_gradients(fwd, (x, weight, bias), (grad_out,)))


define(OpDef(
    name="depthwise_conv3x3_fwd", family=FAMILY,
    schema="(Tensor x, Tensor weight, Tensor? bias, str epilogue) -> Tensor",
    fake=_fwd_fake, reference=reference_depthwise_conv3x3, cpp_autograd=True,
    backward=_fwd_backward, setup_context=_fwd_setup, auto={"cuda": ("reference",)},
    flops=lambda x, *_, **__: _conv_flops(x),
))
define(OpDef(
    name="depthwise_conv3x3_bwd", family=FAMILY,
    schema="(Tensor grad_out, Tensor x, Tensor weight, Tensor? bias, str epilogue) "
           "-> (Tensor dx, Tensor dweight, Tensor dbias)",
    fake=lambda grad_out, x, weight, bias, epilogue: (
        x.new_empty(x.shape), torch.empty_like(weight), weight.new_empty(weight.shape[0])),
    reference=_bwd_reference,
    flops=lambda go, x, *_, **__: 2 * _conv_flops(x),
))


def _check(x, weight, bias, epilogue):
    if epilogue not in EPILOGUES:
        raise ValueError(f"epilogue must be one of {EPILOGUES}, got {epilogue!r}")
    if not isinstance(x, torch.Tensor) or x.dtype not in FLOAT_DTYPES:
        raise TypeError(f"x must be a float32/float64/bfloat16/float16 tensor, got {x!r:.80}")
    if x.dim() != 4:
        raise ValueError(f"x must be a (B, H, W, C) channels-last map, got shape {tuple(x.shape)}")
    c = x.shape[-1]
    if epilogue == "gate" and c % 2:
        raise ValueError(f"epilogue 'gate' needs an even channel count, got C={c}")
    if not isinstance(weight, torch.Tensor) or tuple(weight.shape) != (c, 1, 3, 3):
        raise ValueError(f"weight must be ({c}, 1, 3, 3) for x of shape {tuple(x.shape)}, "
                         f"got {getattr(weight, 'shape', weight)}")
    if bias is not None and (not isinstance(bias, torch.Tensor) or tuple(bias.shape) != (c,)):
        raise ValueError(f"bias must be None or a ({c},) tensor, got {getattr(bias, 'shape', bias)}")
    for name, t in (("weight", weight), ("bias", bias)):
        if t is not None and (t.device != x.device or t.dtype != x.dtype):
            raise ValueError(f"{name} is {t.dtype} on {t.device}, x is {x.dtype} on {x.device}")


def depthwise_conv3x3(x, weight, bias=None, *, epilogue="none", backend="auto"):
    """Depthwise 3x3 conv (padding 1) of a (B, H, W, C) map followed by ``epilogue``
    ("none" | "gelu" | "gate") -> contiguous (B, H, W, C), or (B, H, W, C/2) for "gate"."""
    x, weight, bias = autocast_inputs(x, weight, bias)
    _check(x, weight, bias, epilogue)
    fn = implementation("depthwise_conv3x3_fwd", backend, x.device.type, x.dtype)
    if fn is not reference_depthwise_conv3x3 and x.stride(-1) != 1:
        x = x.contiguous()
    return fn(x, weight, bias, epilogue)
