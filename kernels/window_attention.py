"""Fused window attention (ASID's SLA/SGA) and shared-attention apply: Triton kernels and their
launchers.

Layout: q, k, v are channels-last (B, H, W, d) maps read in place through their strides (they
may be views of one (B, H, W, 3d) projection); window (X, Y) token (i, j) is the pixel given by
``mode`` (see :mod:`.tiles`). attn is (windows, w*w, w*w), windows ordered batch, X, Y. One
window (w*w <= 128 tokens) is one tile: a full softmax, no online rescaling. Tokens and head dim
are padded to powers of two >= 16 with masks; products and softmax run in float32 (float64 for
float64 inputs), matrix-product operands in the input dtype (float32 operands as TF32 when torch
allows it: :func:`.tiles.dot_precision`).

The launchers take the arguments of the operators ``asid_fast::triton_<name>``
(:mod:`asid_fast.ops.window_attention`, which registers them) and return fresh outputs.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from .tiles import (accumulator_dtype, dot_precision, fresh_map, load_pixels, map_strides,
                    pixel_coords, pixel_grid, scalar, store_pixels, tile_size)

# Upper bound on backward programs when dbias is reduced: each writes one (w*w, w*w) partial.
BIAS_PARTIALS = 256


@triton.jit
def window_attention_fwd_kernel(
        q_ptr, k_ptr, v_ptr, bias_ptr, scale_ptr, attn_ptr, out_ptr,
        q_sb, q_sh, q_sw, k_sb, k_sh, k_sw, v_sb, v_sh, v_sw, o_sb, o_sh, o_sw,
        groups, group_cols, member_cols, group_row, group_col, member_row, member_col,
        N_TOK: tl.constexpr, HEAD_DIM: tl.constexpr, BLOCK_N: tl.constexpr,
        BLOCK_D: tl.constexpr, HAS_BIAS: tl.constexpr, COMPUTE_ATTN: tl.constexpr,
        PRECISION: tl.constexpr):
    """One program per window. COMPUTE_ATTN: attn = softmax(scale * q k^T + bias), stored;
    otherwise attn is read (shared attention). Then out = attn v at the window's pixels."""
    ACC: tl.constexpr = tl.float64 if v_ptr.dtype.element_ty == tl.float64 else tl.float32
    win = tl.program_id(0)
    tok = tl.arange(0, BLOCK_N)
    dim = tl.arange(0, BLOCK_D)
    tile_ok = (tok < N_TOK)[:, None] & (dim < HEAD_DIM)[None, :]  # (token, channel) tiles
    square_ok = (tok < N_TOK)[:, None] & (tok < N_TOK)[None, :]  # (token, token) tiles
    square = tok[:, None] * N_TOK + tok[None, :]
    attn_win = attn_ptr + win.to(tl.int64) * (N_TOK * N_TOK)
    b, row, col = pixel_coords(win, tok, groups, group_cols, member_cols, group_row, group_col,
                               member_row, member_col)
    v = load_pixels(v_ptr, v_sb, v_sh, v_sw, b, row, col, dim, tile_ok)
    if COMPUTE_ATTN:
        q = load_pixels(q_ptr, q_sb, q_sh, q_sw, b, row, col, dim, tile_ok)
        k = load_pixels(k_ptr, k_sb, k_sh, k_sw, b, row, col, dim, tile_ok)
        scale = tl.load(scale_ptr).to(ACC)
        # the reference scales q in its own dtype before the product
        s = tl.dot((q * scale).to(q.dtype), tl.trans(k), input_precision=PRECISION, out_dtype=ACC)
        if HAS_BIAS:
            s += tl.load(bias_ptr + square, mask=square_ok, other=0.0).to(ACC)
        # padded keys get no weight; padded query rows stay finite and are not stored
        s = tl.where((tok < N_TOK)[None, :], s, float("-inf"))
        p = tl.exp(s - tl.max(s, 1)[:, None])
        p = (p / tl.sum(p, 1)[:, None]).to(v.dtype)
        tl.store(attn_win + square, p, mask=square_ok)
    else:
        p = tl.load(attn_win + square, mask=square_ok, other=0.0)
    out = tl.dot(p, v, input_precision=PRECISION, out_dtype=ACC)
    store_pixels(out_ptr, o_sb, o_sh, o_sw, b, row, col, dim, tile_ok, out)


@triton.jit
def window_attention_bwd_kernel(
        dout_ptr, dattn_in_ptr, q_ptr, k_ptr, v_ptr, attn_ptr, scale_ptr,
        dq_ptr, dk_ptr, dv_ptr, dattn_ptr, dbias_ptr,
        q_sb, q_sh, q_sw, k_sb, k_sh, k_sw, v_sb, v_sh, v_sw, g_sb, g_sh, g_sw,
        d_sb, d_sh, d_sw,
        groups, group_cols, member_cols, group_row, group_col, member_row, member_col,
        n_windows,
        N_TOK: tl.constexpr, HEAD_DIM: tl.constexpr, BLOCK_N: tl.constexpr,
        BLOCK_D: tl.constexpr, HAS_GRAD_ATTN: tl.constexpr, HAS_BIAS: tl.constexpr,
        SHARED: tl.constexpr, PRECISION: tl.constexpr):
    """Programs stride over the windows. dv = attn^T dout and dattn = dout v^T (+ the incoming
    gradient of attn, HAS_GRAD_ATTN). SHARED: dattn is stored. Otherwise the softmax backward
    ds = attn * (dattn - rowsum(dattn * attn)) gives dq = scale * ds k, dk = ds^T (scale * q),
    and (HAS_BIAS) each program stores the sum of ds over its windows to dbias_ptr[pid]; q, k, v
    are read through their strides (g_*: dout, d_*: the fresh dq, dk, dv maps)."""
    ACC: tl.constexpr = tl.float64 if v_ptr.dtype.element_ty == tl.float64 else tl.float32
    pid = tl.program_id(0)
    tok = tl.arange(0, BLOCK_N)
    dim = tl.arange(0, BLOCK_D)
    tile_ok = (tok < N_TOK)[:, None] & (dim < HEAD_DIM)[None, :]
    square_ok = (tok < N_TOK)[:, None] & (tok < N_TOK)[None, :]
    square = tok[:, None] * N_TOK + tok[None, :]
    dbias = tl.zeros([BLOCK_N, BLOCK_N], dtype=ACC)
    for win in range(pid, n_windows, tl.num_programs(0)):
        win_square = tl.cast(win, tl.int64) * (N_TOK * N_TOK) + square
        b, row, col = pixel_coords(win, tok, groups, group_cols, member_cols, group_row,
                                   group_col, member_row, member_col)
        p = tl.load(attn_ptr + win_square, mask=square_ok, other=0.0)
        go = load_pixels(dout_ptr, g_sb, g_sh, g_sw, b, row, col, dim, tile_ok)
        v = load_pixels(v_ptr, v_sb, v_sh, v_sw, b, row, col, dim, tile_ok)
        dv = tl.dot(tl.trans(p), go, input_precision=PRECISION, out_dtype=ACC)
        store_pixels(dv_ptr, d_sb, d_sh, d_sw, b, row, col, dim, tile_ok, dv)
        dp = tl.dot(go, tl.trans(v), input_precision=PRECISION, out_dtype=ACC)
        if HAS_GRAD_ATTN:
            dp += tl.load(dattn_in_ptr + win_square, mask=square_ok, other=0.0).to(ACC)
        if SHARED:
            tl.store(dattn_ptr + win_square, dp.to(dattn_ptr.dtype.element_ty), mask=square_ok)
        else:
            pf = p.to(ACC)
            ds = pf * (dp - tl.sum(dp * pf, 1)[:, None])
            if HAS_BIAS:
                dbias += ds
            q = load_pixels(q_ptr, q_sb, q_sh, q_sw, b, row, col, dim, tile_ok)
            k = load_pixels(k_ptr, k_sb, k_sh, k_sw, b, row, col, dim, tile_ok)
            scale = tl.load(scale_ptr).to(ACC)
            dq = tl.dot(ds.to(k.dtype), k, input_precision=PRECISION, out_dtype=ACC) * scale
            dk = tl.dot(tl.trans(ds.to(q.dtype)), (q * scale).to(q.dtype),
                        input_precision=PRECISION, out_dtype=ACC)
            store_pixels(dq_ptr, d_sb, d_sh, d_sw, b, row, col, dim, tile_ok, dq)
            store_pixels(dk_ptr, d_sb, d_sh, d_sw, b, row, col, dim, tile_ok, dk)
    if HAS_BIAS:
        tl.store(dbias_ptr + pid.to(tl.int64) * (N_TOK * N_TOK) + square, dbias, mask=square_ok)


# ---- launchers ------------------------------------------------------------------------------

def _tiles(window: int, head_dim: int, dtype: torch.dtype) -> dict:
    n = window * window
    return dict(N_TOK=n, HEAD_DIM=head_dim, BLOCK_N=tile_size(n), BLOCK_D=tile_size(head_dim),
                PRECISION=dot_precision(dtype))


def window_attention_fwd_outputs(q: torch.Tensor, window: int):
    """Empty (out (B, H, W, d) contiguous, attn (windows, w*w, w*w)) in q's dtype."""
    b, h, w, _ = q.shape
    n = window * window
    windows = b * (h // window) * (w // window)
    return fresh_map(q), q.new_empty((windows, n, n))


def window_attention_bwd_outputs(q: torch.Tensor, window: int):
    """Empty dq, dk, dv (contiguous, q's shape and dtype) and dbias (w*w, w*w)."""
    n = window * window
    return fresh_map(q), fresh_map(q), fresh_map(q), q.new_empty((n, n))


def shared_window_attention_bwd_outputs(attn: torch.Tensor, v: torch.Tensor):
    """Empty dattn (attn's shape, contiguous) and dv (contiguous, v's shape)."""
    return fresh_map(attn), fresh_map(v)


def window_attention_fwd(q, k, v, bias, mode: str, window: int, scale: float):
    """(out, attn)."""
    out, attn = window_attention_fwd_outputs(q, window)
    grid = pixel_grid(q.shape[1], q.shape[2], window, mode)
    has_bias = bias is not None
    window_attention_fwd_kernel[(attn.shape[0],)](
        q, k, v, bias.contiguous() if has_bias else q, scalar(scale, q.device), attn, out,
        *map_strides(q), *map_strides(k), *map_strides(v), *map_strides(out), *grid.kernel_args(),
        **_tiles(window, q.shape[-1], q.dtype), HAS_BIAS=has_bias, COMPUTE_ATTN=True, num_warps=4)
    return out, attn


def shared_window_attention_fwd(attn, v, mode: str, window: int):
    """out = attn applied to v per window."""
    out = fresh_map(v)
    attn = attn.contiguous()
    grid = pixel_grid(v.shape[1], v.shape[2], window, mode)
    vs = map_strides(v)
    window_attention_fwd_kernel[(attn.shape[0],)](
        v, v, v, v, attn, attn, out, *vs, *vs, *vs, *map_strides(out), *grid.kernel_args(),
        **_tiles(window, v.shape[-1], v.dtype), HAS_BIAS=False, COMPUTE_ATTN=False, num_warps=4)
    return out


def window_attention_bwd(grad_out, grad_attn, q, k, v, attn, bias, mode: str, window: int,
                         scale: float):
    """(dq, dk, dv, dbias)."""
    dq, dk, dv, dbias = window_attention_bwd_outputs(q, window)
    windows = attn.shape[0]
    has_bias = bias is not None
    programs = min(windows, BIAS_PARTIALS) if has_bias else windows
    n = window * window
    partials = q.new_empty((programs, n, n), dtype=accumulator_dtype(q.dtype)) if has_bias else dq
    has_grad_attn = grad_attn is not None
    grid = pixel_grid(q.shape[1], q.shape[2], window, mode)
    window_attention_bwd_kernel[(programs,)](
        grad_out, grad_attn.contiguous() if has_grad_attn else grad_out, q, k, v,
        attn.contiguous(), scalar(scale, q.device), dq, dk, dv, dv, partials,
        *map_strides(q), *map_strides(k), *map_strides(v), *map_strides(grad_out),
        *map_strides(dq), *grid.kernel_args(), windows, **_tiles(window, q.shape[-1], q.dtype),
        HAS_GRAD_ATTN=has_grad_attn, HAS_BIAS=has_bias, SHARED=False, num_warps=8)
    if has_bias:
        dbias.copy_(partials.sum(0))
    else:
        dbias.zero_()
    return dq, dk, dv, dbias


def shared_window_attention_bwd(grad_out, attn, v, mode: str, window: int):
    """(dattn, dv)."""
    dattn, dv = shared_window_attention_bwd_outputs(attn, v)
    windows = attn.shape[0]
    grid = pixel_grid(v.shape[1], v.shape[2], window, mode)
    vs = map_strides(v)
    window_attention_bwd_kernel[(windows,)](
        grad_out, grad_out, v, v, v, attn.contiguous(), v, dv, dv, dv, dattn, dv,
        *vs, *vs, *vs, *map_strides(grad_out), *map_strides(dv), *grid.kernel_args(), windows,
        **_tiles(window, v.shape[-1], v.dtype), HAS_GRAD_ATTN=False, HAS_BIAS=False, SHARED=True,
        num_warps=8)
    return dattn, dv
