"""Fused channel attention (ASID's CAM): Triton kernels and their launchers.

Per pixel group (mode "window": the w*w pixels of window (X, Y); mode "cell": the H*W/w^2
pixels at offset (i, j) of every window, see :mod:`.tiles`) of a channels-last (B, H, W, C) map,
with q_c, k_c the length-n rows of channel c over the group's pixels:

    A = softmax_c'(temperature * <q_c, k_c'> / (max(|q_c|, eps) * max(|k_c'|, eps)))   (C x C)
    out[pixel, c] = sum_c' A[c, c'] v[pixel, c']                                        eps = 1e-12

One program per group; the group's pixels are visited in blocks of BLOCK_M (n is H*W/64 for
"cell", e.g. 920 at 184x320), channels padded to a power of two >= 16 (48 -> 64). The forward
stores A and the inverse norms (float32, float64 for float64 inputs) for the backward. Float32
products run as TF32 when torch allows it (:func:`.tiles.dot_precision`).

The launchers take the arguments of the operators ``asid_fast::triton_channel_attention_*``
(:mod:`asid_fast.ops.channel_attention`, which registers them) and return fresh outputs.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from .tiles import (accumulator_dtype, dot_precision, fresh_map, load_pixels, map_strides,
                    pixel_coords, pixel_grid, store_pixels, tile_size, warps_for)

MAX_PIXEL_BLOCK = 64


@triton.jit
def pixel_block(group, start, members, ch_ok, groups, group_cols, member_cols, group_row,
                group_col, member_row, member_col, BLOCK_M: tl.constexpr):
    """(pixel, channel) mask and (batch, row, col) of the group's pixels start..start+BLOCK_M."""
    m = start + tl.arange(0, BLOCK_M)
    b, row, col = pixel_coords(group, m, groups, group_cols, member_cols, group_row, group_col,
                               member_row, member_col)
    return (m < members)[:, None] & ch_ok[None, :], b, row, col


@triton.jit
def channel_attention_fwd_kernel(
        q_ptr, k_ptr, v_ptr, temp_ptr, out_ptr, attn_ptr, rq_ptr, rk_ptr,
        q_sb, q_sh, q_sw, k_sb, k_sh, k_sw, v_sb, v_sh, v_sw, o_sb, o_sh, o_sw,
        groups, group_cols, member_cols, group_row, group_col, member_row, member_col, members,
        CH: tl.constexpr, BLOCK_C: tl.constexpr, BLOCK_M: tl.constexpr, PRECISION: tl.constexpr):
    """Pass 1 over the pixels: Gram matrix q^T k and squared channel norms; then A (stored with
    the inverse norms rq, rk); pass 2: out = v A^T."""
    ACC: tl.constexpr = tl.float64 if v_ptr.dtype.element_ty == tl.float64 else tl.float32
    g = tl.program_id(0)
    ch = tl.arange(0, BLOCK_C)
    ch_ok = ch < CH
    gram = tl.zeros([BLOCK_C, BLOCK_C], dtype=ACC)
    q_sq = tl.zeros([BLOCK_C], dtype=ACC)
    k_sq = tl.zeros([BLOCK_C], dtype=ACC)
    for start in range(0, members, BLOCK_M):
        tile_ok, b, row, col = pixel_block(g, start, members, ch_ok, groups, group_cols,
                                           member_cols, group_row, group_col, member_row,
                                           member_col, BLOCK_M)
        q = load_pixels(q_ptr, q_sb, q_sh, q_sw, b, row, col, ch, tile_ok)
        k = load_pixels(k_ptr, k_sb, k_sh, k_sw, b, row, col, ch, tile_ok)
        gram = tl.dot(tl.trans(q), k, gram, input_precision=PRECISION, out_dtype=ACC)
        q_sq += tl.sum(q.to(ACC) * q.to(ACC), 0)
        k_sq += tl.sum(k.to(ACC) * k.to(ACC), 0)
    rq = 1.0 / tl.maximum(tl.sqrt(q_sq), 1e-12)
    rk = 1.0 / tl.maximum(tl.sqrt(k_sq), 1e-12)
    z = gram * rq[:, None] * rk[None, :] * tl.load(temp_ptr).to(ACC)
    z = tl.where(ch_ok[None, :], z, float("-inf"))
    a = tl.exp(z - tl.max(z, 1)[:, None])
    a = a / tl.sum(a, 1)[:, None]
    square = g.to(tl.int64) * (CH * CH) + ch[:, None] * CH + ch[None, :]
    tl.store(attn_ptr + square, a, mask=ch_ok[:, None] & ch_ok[None, :])
    tl.store(rq_ptr + g.to(tl.int64) * CH + ch, rq, mask=ch_ok)
    tl.store(rk_ptr + g.to(tl.int64) * CH + ch, rk, mask=ch_ok)
    for start in range(0, members, BLOCK_M):
        tile_ok, b, row, col = pixel_block(g, start, members, ch_ok, groups, group_cols,
                                           member_cols, group_row, group_col, member_row,
                                           member_col, BLOCK_M)
        v = load_pixels(v_ptr, v_sb, v_sh, v_sw, b, row, col, ch, tile_ok)
        out = tl.dot(v, tl.trans(a.to(v.dtype)), input_precision=PRECISION, out_dtype=ACC)
        store_pixels(out_ptr, o_sb, o_sh, o_sw, b, row, col, ch, tile_ok, out)


@triton.jit
def channel_attention_bwd_kernel(
        dout_ptr, q_ptr, k_ptr, v_ptr, temp_ptr, attn_ptr, rq_ptr, rk_ptr,
        dq_ptr, dk_ptr, dv_ptr, dtemp_ptr,
        q_sb, q_sh, q_sw, k_sb, k_sh, k_sw, v_sb, v_sh, v_sw, g_sb, g_sh, g_sw, d_sb, d_sh, d_sw,
        groups, group_cols, member_cols, group_row, group_col, member_row, member_col, members,
        CH: tl.constexpr, BLOCK_C: tl.constexpr, BLOCK_M: tl.constexpr, PRECISION: tl.constexpr):
    """Pass 1: Gram matrix and dA = dout^T v; softmax backward dz; the group's share of
    dtemperature (stored to dtemp_ptr[g]); pass 2: dv = dout A, dq and dk through the
    normalisation (g_*: dout strides, d_*: the fresh dq, dk, dv maps)."""
    ACC: tl.constexpr = tl.float64 if v_ptr.dtype.element_ty == tl.float64 else tl.float32
    g = tl.program_id(0)
    ch = tl.arange(0, BLOCK_C)
    ch_ok = ch < CH
    square = g.to(tl.int64) * (CH * CH) + ch[:, None] * CH + ch[None, :]
    a = tl.load(attn_ptr + square, mask=ch_ok[:, None] & ch_ok[None, :], other=0.0)
    rq = tl.load(rq_ptr + g.to(tl.int64) * CH + ch, mask=ch_ok, other=0.0)
    rk = tl.load(rk_ptr + g.to(tl.int64) * CH + ch, mask=ch_ok, other=0.0)
    gram = tl.zeros([BLOCK_C, BLOCK_C], dtype=ACC)
    da = tl.zeros([BLOCK_C, BLOCK_C], dtype=ACC)
    for start in range(0, members, BLOCK_M):
        tile_ok, b, row, col = pixel_block(g, start, members, ch_ok, groups, group_cols,
                                           member_cols, group_row, group_col, member_row,
                                           member_col, BLOCK_M)
        q = load_pixels(q_ptr, q_sb, q_sh, q_sw, b, row, col, ch, tile_ok)
        k = load_pixels(k_ptr, k_sb, k_sh, k_sw, b, row, col, ch, tile_ok)
        v = load_pixels(v_ptr, v_sb, v_sh, v_sw, b, row, col, ch, tile_ok)
        go = load_pixels(dout_ptr, g_sb, g_sh, g_sw, b, row, col, ch, tile_ok)
        gram = tl.dot(tl.trans(q), k, gram, input_precision=PRECISION, out_dtype=ACC)
        da = tl.dot(tl.trans(go), v, da, input_precision=PRECISION, out_dtype=ACC)
    s_hat = gram * rq[:, None] * rk[None, :]  # <q_c, k_c'> of the normalised rows
    dz = a * (da - tl.sum(da * a, 1)[:, None])
    tl.store(dtemp_ptr + g, tl.sum(tl.sum(dz * s_hat, 1), 0))
    ds = dz * tl.load(temp_ptr).to(ACC)  # gradient of s_hat
    # x_hat = x * r with r = 1 / max(|x|, eps): dx = r * (dx_hat - x_hat <dx_hat, x_hat>), where
    # <dq_hat_c, q_hat_c> = sum_c' ds s_hat (row c) and <dk_hat_c', k_hat_c'> = column c'; the
    # projection term vanishes where the norm was clamped to eps (r = 1e12).
    alpha = tl.where(rq < 1e12, tl.sum(ds * s_hat, 1), 0.0) * rq
    beta = tl.where(rk < 1e12, tl.sum(ds * s_hat, 0), 0.0) * rk
    gq = ds * rk[None, :]  # dq_hat[m, c] = sum_c' k[m, c'] gq[c, c']
    gk = ds * rq[:, None]  # dk_hat[m, c'] = sum_c q[m, c] gk[c, c']
    for start in range(0, members, BLOCK_M):
        tile_ok, b, row, col = pixel_block(g, start, members, ch_ok, groups, group_cols,
                                           member_cols, group_row, group_col, member_row,
                                           member_col, BLOCK_M)
        q = load_pixels(q_ptr, q_sb, q_sh, q_sw, b, row, col, ch, tile_ok)
        k = load_pixels(k_ptr, k_sb, k_sh, k_sw, b, row, col, ch, tile_ok)
        go = load_pixels(dout_ptr, g_sb, g_sh, g_sw, b, row, col, ch, tile_ok)
        dv = tl.dot(go, a.to(go.dtype), input_precision=PRECISION, out_dtype=ACC)
        dq = tl.dot(k, tl.trans(gq).to(k.dtype), input_precision=PRECISION, out_dtype=ACC)
        dq = (dq - q.to(ACC) * alpha[None, :]) * rq[None, :]
        dk = tl.dot(q, gk.to(q.dtype), input_precision=PRECISION, out_dtype=ACC)
        dk = (dk - k.to(ACC) * beta[None, :]) * rk[None, :]
        store_pixels(dv_ptr, d_sb, d_sh, d_sw, b, row, col, ch, tile_ok, dv)
        store_pixels(dq_ptr, d_sb, d_sh, d_sw, b, row, col, ch, tile_ok, dq)
        store_pixels(dk_ptr, d_sb, d_sh, d_sw, b, row, col, ch, tile_ok, dk)


# ---- launchers ------------------------------------------------------------------------------

def _tiles(channels: int, members: int, dtype: torch.dtype) -> dict:
    return dict(CH=channels, BLOCK_C=tile_size(channels),
                BLOCK_M=min(MAX_PIXEL_BLOCK, tile_size(members)), PRECISION=dot_precision(dtype))


def channel_attention_fwd_outputs(q: torch.Tensor, mode: str, window: int):
    """Empty out (q's shape and dtype, contiguous), attn (G, C, C), rq, rk (G, C) (accumulator
    dtype: float32, float64 for float64 q)."""
    b, h, w, c = q.shape
    groups = b * pixel_grid(h, w, window, mode).groups
    acc = accumulator_dtype(q.dtype)
    return (fresh_map(q), q.new_empty((groups, c, c), dtype=acc),
            q.new_empty((groups, c), dtype=acc), q.new_empty((groups, c), dtype=acc))


def channel_attention_bwd_outputs(q: torch.Tensor, temperature: torch.Tensor):
    """Empty dq, dk, dv (q's shape and dtype, contiguous) and dtemperature (temperature's
    shape)."""
    return fresh_map(q), fresh_map(q), fresh_map(q), temperature.new_empty(temperature.shape)


def channel_attention_fwd(q, k, v, temperature, mode: str, window: int):
    """(out, attn, rq, rk)."""
    out, attn, rq, rk = channel_attention_fwd_outputs(q, mode, window)
    grid = pixel_grid(q.shape[1], q.shape[2], window, mode)
    tiles = _tiles(q.shape[-1], grid.members, q.dtype)
    channel_attention_fwd_kernel[(attn.shape[0],)](
        q, k, v, temperature, out, attn, rq, rk,
        *map_strides(q), *map_strides(k), *map_strides(v), *map_strides(out),
        *grid.kernel_args(), grid.members, **tiles,
        num_warps=warps_for(tiles["BLOCK_M"], tiles["BLOCK_C"]))
    return out, attn, rq, rk


def channel_attention_bwd(grad_out, q, k, v, temperature, attn, rq, rk, mode: str, window: int):
    """(dq, dk, dv, dtemperature)."""
    dq, dk, dv, dtemperature = channel_attention_bwd_outputs(q, temperature)
    groups = attn.shape[0]
    partials = q.new_empty((groups,), dtype=accumulator_dtype(q.dtype))
    grid = pixel_grid(q.shape[1], q.shape[2], window, mode)
    channel_attention_bwd_kernel[(groups,)](
        grad_out, q, k, v, temperature, attn.contiguous(), rq.contiguous(), rk.contiguous(),
        dq, dk, dv, partials,
        *map_strides(q), *map_strides(k), *map_strides(v), *map_strides(grad_out),
        *map_strides(dq), *grid.kernel_args(), grid.members,
        **_tiles(q.shape[-1], grid.members, q.dtype), num_warps=8)
    dtemperature.copy_(partials.sum().reshape(temperature.shape))
    return dq, dk, dv, dtemperature
