"""Fused per-pixel linear map (ASID's 1x1 convolutions and Linear layers) on channels-last maps:

    pre = residual + [x_0 | x_1 | ...] Wᵀ + bias
    out = gate * sigmoid(pre) if a gate is given (ESA's last step), else pre

The inputs (one to four (B, H, W, k_i) maps with a unit channel stride, e.g. channel slices) are
concatenated along channels without a copy: the product is split along its reduction. W is
(N, K), or (B, N, K) with one matrix per image (the local module folds its squeeze-excitation
scale into its last conv that way). bias (N,), residual and gate (B, H, W, N) are optional.

Operator ``asid_fast::linear_fwd(xs, weight, bias?, residual?, gate?) -> out`` (CPU kernels of the
extension): one pass per image row, the bias, residual and gate applied as the row is stored; its
products take bf16 inputs with float32 sums where torch allows bf16 for float32 matmuls on the CPU
and the CPU has AVX512-BF16 (as conv_chain's; csrc/cpu/bf16_products.h). Its autograd is registered
in C++ (csrc/ops/autograd.cpp) and calls ``asid_fast::linear_bwd(grad, xs, weight, bias?,
residual?, gate?) -> [*dxs, dweight, dbias, dresidual, dgate]``: one more row-streamed pass that
reads the gradient once for every input's gradient (g W_i, contiguous maps), the weight's (g^T x_i,
summed per work part) and the bias's (g's channel sums; also without a bias). g is grad, or with a
gate grad gate sigmoid'(pre), pre recomputed row by row; then dgate = grad sigmoid(pre) and
dresidual = g (given a residual). Without a gate or a residual those two are empty: the residual's
gradient is grad itself. Elsewhere, and for ``backend="reference"``, the map is torch.cat, matmul,
add and sigmoid.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ._checks import autocast_inputs
from ._registry import OpDef, compiled_backend, define, reference_gradients

__all__ = ["linear"]
FAMILY = "linear"
MAX_INPUTS = 4


def composed_linear(xs, weight, bias=None, residual=None, gate=None):
    """The map with torch.cat, matmul, add and sigmoid."""
    x = xs[0] if len(xs) == 1 else torch.cat(xs, dim=-1)
    if weight.dim() == 2:
        out = F.linear(x, weight, bias)
    else:  # one matrix per image
        out = torch.matmul(x.flatten(1, 2), weight.transpose(1, 2)).view(*x.shape[:3], -1)
        if bias is not None:
            out = out + bias
    if residual is not None:
        out = out + residual
    return out if gate is None else gate * torch.sigmoid(out)


def _flops(xs, weight, *_, **__):
    b, h, w, _ = xs[0]
    return 2 * b * h * w * weight[-1] * weight[-2]


define(OpDef(
    name="linear_fwd", family=FAMILY, backends=("cpu",), cpp_autograd=True,
    schema="(Tensor[] xs, Tensor weight, Tensor? bias, Tensor? residual, Tensor? gate) -> Tensor",
    fake=lambda xs, weight, bias, residual, gate: xs[0].new_empty((*xs[0].shape[:3],
                                                                   weight.shape[-2])),
    reference=composed_linear, flops=_flops,
))


def _bwd_reference(grad, xs, weight, bias, residual, gate):
    """linear_bwd's outputs through the composition."""
    n = len(xs)
    bias = bias if bias is not None else weight.new_zeros(weight.shape[-2])
    grads = reference_gradients(
        lambda *t: (composed_linear(list(t[:n]), *t[n:]),),
        (*xs, weight, bias, residual, gate), (grad,))
    d_residual = grads[n + 2] if gate is not None and residual is not None else grad.new_empty(0)
    return [*grads[:n], grads[n], grads[n + 1], d_residual,
            grads[n + 3] if gate is not None else grad.new_empty(0)]


def _bwd_fake(grad, xs, weight, bias, residual, gate):
    def like(t):
        return t.new_empty(t.shape)
    return [*(like(x) for x in xs), like(weight), weight.new_empty(weight.shape[-2]),
            like(grad) if gate is not None and residual is not None else grad.new_empty(0),
            like(grad) if gate is not None else grad.new_empty(0)]


define(OpDef(  # FLOPs: each gradient costs the forward's (a gate's recomputation is not counted)
    name="linear_bwd", family=FAMILY, backends=("cpu",),
    schema="(Tensor grad, Tensor[] xs, Tensor weight, Tensor? bias, Tensor? residual, "
           "Tensor? gate) -> Tensor[]",
    fake=_bwd_fake, reference=_bwd_reference,
    flops=lambda grad, *args, **_: 2 * _flops(*args),
))


def linear(xs, weight, bias=None, residual=None, *, gate=None, backend="auto"):
    """residual + cat(xs) Wᵀ + bias, or gate * sigmoid(that) -> contiguous (B, H, W, N) (see the
    module docstring)."""
    xs = list(xs)
    if not 1 <= len(xs) <= MAX_INPUTS:
        raise ValueError(f"xs must hold 1 to {MAX_INPUTS} maps, got {len(xs)}")
    *xs, weight, bias, residual, gate = autocast_inputs(*xs, weight, bias, residual, gate)
    fused = (compiled_backend("linear_fwd", backend, xs[0].device.type, xs[0].dtype) is not None
             and all(x.stride(-1) == 1 for x in xs)
             and all(t is None or t.stride(-1) == 1 for t in (residual, gate)))
    if not fused:
        return composed_linear(xs, weight, bias, residual, gate)
    return torch.ops.asid_fast.linear_fwd(xs, weight, bias, residual, gate)
