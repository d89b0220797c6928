"""Fused depthwise 3x3 convolution (zero padding 1, stride 1) on channels-last maps, with the
element-wise step that follows it in ASID folded in:

* ``"none"``: the convolution (``qkv_dwconv`` of the channel attention);
* ``"gelu"``: GELU(conv) (the local module's ``dw 3x3 -> GELU``);
* ``"gate"``: GELU(a) * b with a, b the first and second channel halves of the convolution (the
  gated FFN tail ``dwconv -> chunk -> gelu(a) * b``), C/2 output channels.

Compiled/Triton ops (``prefix`` is "" for the C++/CUDA extension, "triton_" for Triton):

* ``asid_fast::<prefix>fused_dwconv3x3_fwd(Tensor x, Tensor weight, Tensor? bias, str epilogue)
  -> Tensor`` — x (B, H, W, C) with a unit channel stride (rows may be strided), weight (C, 1, 3, 3)
  as ``nn.Conv2d`` stores it, bias (C,) or None; out contiguous (B, H, W, C or C/2).
* ``asid_fast::<prefix>fused_dwconv3x3_bwd(Tensor grad_out, Tensor x, Tensor weight, Tensor? bias,
  str epilogue) -> (Tensor dx, Tensor dweight, Tensor dbias)`` — recomputes the convolution for
  the epilogue's derivative (nothing but x is saved); dbias is the gradient a bias would get
  (returned also when bias is None, and then dropped by autograd).

The forward op's autograd calls the backward op: registered in C++ for the extension's ops
(cpu/fused_autograd.cpp), here for the Triton ones.

Accumulation and GELU run in float32 for bf16/fp16 inputs (upcast), in the input dtype otherwise.
FLOP formula: 2 * 9 * B*H*W*C for the forward; the backward costs twice that (dx and dweight).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import register_flop_formula

from . import _fused_dispatch
from ._checks import FLOAT_DTYPES

FAMILY = "fused_dwconv3x3"
EPILOGUES = ("none", "gelu", "gate")


def _out_channels(c, epilogue):
    return c // 2 if epilogue == "gate" else c


def _fake_fwd(x, weight, bias, epilogue):
    b, h, w, c = x.shape
    return x.new_empty((b, h, w, _out_channels(c, epilogue)))


def _fake_bwd(grad_out, x, weight, bias, epilogue):
    return x.new_empty(x.shape), torch.empty_like(weight), weight.new_empty(weight.shape[0])


def _setup(ctx, inputs, output):
    x, weight, bias, epilogue = inputs
    ctx.save_for_backward(x, weight, bias)
    ctx.epilogue = epilogue
    ctx.has_bias = bias is not None


def _conv_flops(x_shape):
    b, h, w, c = x_shape
    return 2 * 9 * b * h * w * c


def register_ops(prefix: str) -> None:
    """Attach fake kernels, autograd and FLOP formulas to ``asid_fast::<prefix>fused_dwconv3x3_*``."""
    ns = torch.ops.asid_fast
    bwd = getattr(ns, prefix + FAMILY + "_bwd").default

    def backward(ctx, grad_out):
        x, weight, bias = ctx.saved_tensors
        dx, dw, db = bwd(grad_out.contiguous(), x, weight, bias, ctx.epilogue)
        return dx, dw, (db if ctx.has_bias else None), None

    if not _fused_dispatch.register_op(prefix + FAMILY + "_fwd", _fake_fwd, backward, _setup):
        return
    _fused_dispatch.register_op(prefix + FAMILY + "_bwd", _fake_bwd)

    @register_flop_formula(getattr(ns, prefix + FAMILY + "_fwd"))
    def _(x_shape, *args, out_shape=None, **kwargs):
        return _conv_flops(x_shape)

    @register_flop_formula(getattr(ns, prefix + FAMILY + "_bwd"))
    def _(go_shape, x_shape, *args, out_shape=None, **kwargs):
        return 2 * _conv_flops(x_shape)


def reference_depthwise_conv3x3(x, weight, bias, epilogue):
    """What the reference model computes: ``nn.Conv2d`` depthwise 3x3, then the epilogue."""
    y = F.conv2d(x.permute(0, 3, 1, 2), weight, bias, padding=1, groups=x.shape[-1])
    if epilogue == "gelu":
        y = F.gelu(y)
    elif epilogue == "gate":
        a, b = y.chunk(2, dim=1)
        y = F.gelu(a) * b
    return y.permute(0, 2, 3, 1)


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
    _check(x, weight, bias, epilogue)
    impl = _fused_dispatch.resolve(backend, x.device.type, FAMILY, x.dtype)
    if impl == "reference":
        return reference_depthwise_conv3x3(x, weight, bias, epilogue)
    if x.stride(-1) != 1:
        x = x.contiguous()
    prefix = "triton_" if impl == "triton" else ""
    return getattr(torch.ops.asid_fast, prefix + FAMILY + "_fwd")(x, weight, bias, epilogue)


_fused_dispatch.add_register_hook(FAMILY, register_ops)
if hasattr(torch.ops.asid_fast, FAMILY + "_fwd"):  # extension already loaded (torch imports this
    register_ops("")  # module for the ops' fake kernels, see cpu/fused_op_schemas.cpp)
