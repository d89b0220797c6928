"""Fused per-pixel linear map (ASID's 1x1 convolutions and Linear layers) on channels-last maps:

    out = residual + [x_0 | x_1 | ...] W^T + bias

The inputs (one to four (B, H, W, k_i) maps with a unit channel stride, e.g. channel slices) are
concatenated along channels without a copy: the product is split along its reduction. W is
(N, K), or (B, N, K) with one matrix per image (the local module folds its squeeze-excitation
scale into its last conv that way). bias (N,) and residual (B, H, W, N) are optional.

On CPU tensors with the extension built it is the operator ``asid_fast::fused_linear_fwd(Tensor[]
xs, Tensor weight, Tensor? bias, Tensor? residual) -> Tensor``: one pass per image row, the
bias and residual added as the row is stored (no concatenated input, no separate residual pass).
Its backward is plain matmuls, registered in C++ (cpu/fused_autograd.cpp). Elsewhere, and for
``backend="reference"``, the same map is computed with torch.cat, matmul and add.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from . import _fused_dispatch
from .dispatch import BACKENDS

FAMILY = "fused_linear"
MAX_INPUTS = 4


def composed_linear(xs, weight, bias=None, residual=None):
    """The map with torch.cat, matmul and add."""
    x = xs[0] if len(xs) == 1 else torch.cat(xs, dim=-1)
    if weight.dim() == 2:
        out = F.linear(x, weight, bias)
    else:  # one matrix per image
        out = torch.matmul(x.flatten(1, 2), weight.transpose(1, 2)).view(*x.shape[:3], -1)
        if bias is not None:
            out = out + bias
    return out if residual is None else out + residual


def _fake(xs, weight, bias, residual):
    return xs[0].new_empty((*xs[0].shape[:3], weight.shape[-2]))


def register_ops(prefix: str = "") -> None:
    """Attach the fake kernel to ``asid_fast::fused_linear_fwd`` (its autograd is in C++)."""
    _fused_dispatch.register_op(FAMILY + "_fwd", _fake)


def linear(xs, weight, bias=None, residual=None, *, backend="auto"):
    """residual + cat(xs) W^T + bias -> contiguous (B, H, W, N) (see the module docstring)."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    xs = list(xs)
    if not 1 <= len(xs) <= MAX_INPUTS:
        raise ValueError(f"xs must hold 1 to {MAX_INPUTS} maps, got {len(xs)}")
    fused = (_fused_dispatch.cpu_op_usable(backend, xs[0].device.type, FAMILY,
                                              xs[0].dtype)
             and all(x.stride(-1) == 1 for x in xs)
             and (residual is None or residual.stride(-1) == 1))
    if not fused:
        return composed_linear(xs, weight, bias, residual)
    return torch.ops.asid_fast.fused_linear_fwd(xs, weight, bias, residual)


_fused_dispatch.add_register_hook(FAMILY, register_ops)
if hasattr(torch.ops.asid_fast, FAMILY + "_fwd"):  # extension already loaded (torch imports this
    register_ops()  # module for the op's fake kernel, see cpu/fused_op_schemas.cpp)
