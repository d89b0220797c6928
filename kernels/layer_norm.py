"""LayerNorm over the channels of each pixel of a channels-last (B, H, W, C) map: Triton kernels,
the launchers of the operators ``asid_fast::triton_layer_norm_fwd/_bwd`` (schemas, fake kernels
and autograd: :mod:`asid_fast.ops.layer_norm`).

One program normalises BLOCK_R pixel rows, read through the map's strides (rows may be a channel
slice of a wider map); statistics and the affine step run in float32 (float64 for float64
maps). The backward writes dx and one partial (dweight, dbias) per program, summed afterwards.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch import Tensor

from .tiles import accumulator_dtype, fresh_map, map_strides, scalar

TILE_ELEMENTS = 4096  # rows x padded channels per program


@triton.jit
def _rows_tile(sb, sh, sw, rows, H, W, C, BLOCK_R: tl.constexpr, BLOCK_C: tl.constexpr):
    """Offsets of this program's (row, channel) tile in a strided map, and its mask."""
    r = tl.program_id(0) * BLOCK_R + tl.arange(0, BLOCK_R)
    c = tl.arange(0, BLOCK_C)
    col = r % W
    img_row = (r // W) % H
    b = r // (W * H)
    offs = (b * sb + img_row * sh + col * sw)[:, None] + c[None, :]
    return r, c, offs, (r < rows)[:, None] & (c < C)[None, :]


@triton.jit
def layer_norm_fwd_kernel(x_ptr, w_ptr, b_ptr, eps_ptr, y_ptr, mean_ptr, rstd_ptr, sb, sh, sw,
                          rows, H, W, C, BLOCK_R: tl.constexpr, BLOCK_C: tl.constexpr):
    ACC: tl.constexpr = tl.float64 if x_ptr.dtype.element_ty == tl.float64 else tl.float32
    r, c, offs, m = _rows_tile(sb, sh, sw, rows, H, W, C, BLOCK_R, BLOCK_C)
    x = tl.load(x_ptr + offs, mask=m, other=0.0).to(ACC)
    mean = tl.sum(x, axis=1) / C
    d = tl.where(m, x - mean[:, None], 0.0)
    rstd = 1.0 / tl.sqrt(tl.sum(d * d, axis=1) / C + tl.load(eps_ptr).to(ACC))
    w = tl.load(w_ptr + c, mask=c < C, other=0.0).to(ACC)
    b = tl.load(b_ptr + c, mask=c < C, other=0.0).to(ACC)
    y = d * rstd[:, None] * w[None, :] + b[None, :]
    tl.store(y_ptr + r[:, None] * C + c[None, :], y.to(y_ptr.dtype.element_ty), mask=m)
    tl.store(mean_ptr + r, mean, mask=r < rows)
    tl.store(rstd_ptr + r, rstd, mask=r < rows)


@triton.jit
def layer_norm_bwd_kernel(g_ptr, x_ptr, w_ptr, mean_ptr, rstd_ptr, dx_ptr, partial_ptr, sb, sh,
                          sw, rows, H, W, C, BLOCK_R: tl.constexpr, BLOCK_C: tl.constexpr):
    """dx = rstd (g w - mean(g w) - xhat mean(g w xhat)); partials[program] = (sum g xhat,
    sum g) over the program's rows."""
    ACC: tl.constexpr = tl.float64 if x_ptr.dtype.element_ty == tl.float64 else tl.float32
    r, c, offs, m = _rows_tile(sb, sh, sw, rows, H, W, C, BLOCK_R, BLOCK_C)
    dense = r[:, None] * C + c[None, :]
    x = tl.load(x_ptr + offs, mask=m, other=0.0).to(ACC)
    g = tl.load(g_ptr + dense, mask=m, other=0.0).to(ACC)
    mean = tl.load(mean_ptr + r, mask=r < rows, other=0.0)
    rstd = tl.load(rstd_ptr + r, mask=r < rows, other=0.0)
    w = tl.load(w_ptr + c, mask=c < C, other=0.0).to(ACC)
    xhat = tl.where(m, (x - mean[:, None]) * rstd[:, None], 0.0)
    gw = g * w[None, :]
    m1 = tl.sum(gw, axis=1) / C
    m2 = tl.sum(gw * xhat, axis=1) / C
    dx = rstd[:, None] * (gw - m1[:, None] - xhat * m2[:, None])
    tl.store(dx_ptr + dense, dx.to(dx_ptr.dtype.element_ty), mask=m)
    p = partial_ptr + tl.program_id(0) * 2 * C + c
    tl.store(p, tl.sum(g * xhat, axis=0), mask=c < C)
    tl.store(p + C, tl.sum(g, axis=0), mask=c < C)


def _tiles(rows: int, channels: int):
    block_c = triton.next_power_of_2(channels)
    block_r = max(1, min(TILE_ELEMENTS // block_c, triton.next_power_of_2(rows)))
    return triton.cdiv(rows, block_r), dict(BLOCK_R=block_r, BLOCK_C=block_c)


def layer_norm_fwd_outputs(x: Tensor):
    """Empty y (contiguous, x's shape) and mean, rstd (B, H, W) in the accumulation dtype."""
    stats = x.new_empty(x.shape[:3], dtype=accumulator_dtype(x.dtype))
    return fresh_map(x), stats, torch.empty_like(stats)


def layer_norm_fwd(x, weight, bias, eps: float):
    """(y, mean, rstd)."""
    y, mean, rstd = layer_norm_fwd_outputs(x)
    b, h, w, c = x.shape
    programs, tiles = _tiles(b * h * w, c)
    layer_norm_fwd_kernel[(programs,)](x, weight, bias, scalar(eps, x.device), y, mean, rstd,
                                       *map_strides(x), b * h * w, h, w, c, **tiles)
    return y, mean, rstd


def layer_norm_bwd(grad_y, x, weight, mean, rstd):
    """(dx, dweight, dbias)."""
    b, h, w, c = x.shape
    programs, tiles = _tiles(b * h * w, c)
    dx = fresh_map(x)
    partials = x.new_empty((programs, 2, c), dtype=accumulator_dtype(x.dtype))
    layer_norm_bwd_kernel[(programs,)](grad_y.contiguous(), x, weight, mean, rstd, dx, partials,
                                       *map_strides(x), b * h * w, h, w, c, **tiles)
    sums = partials.sum(0).to(weight.dtype)
    return dx, sums[0].clone(), sums[1].clone()
