"""The attention half of ASID's SLA/SGA blocks as one kernel: Triton kernel and the launchers of
the operators ``asid_fast::triton_attention_block_fwd`` and ``triton_shared_attention_block_fwd``
(schemas, fake kernels, autograd: :mod:`asid_fast.ops.attention_block`).

One program per window (w*w <= 64 tokens, d <= 64 channels: everything stays on chip). It reads
the window's pixels of x (B, H, W, d) once, normalises each token over its d channels
(LayerNorm), projects (q, k, v = LN(x) W_qkvᵀ, or v = LN(x) W_vᵀ when sharing), computes
attn = softmax(scale q kᵀ + bias) (or reads the stored attn when sharing), o = attn v, and writes
y = x + o W_outᵀ at the same pixels (and attn). Tokens and channels are padded to powers of two
>= 16 with masks (d = 12, 24, 36 -> 16, 32, 64). Statistics, softmax and products accumulate in
float32 (float64 for float64 maps); every intermediate the reference rounds (LN(x), q, k, v, o)
is rounded to the map's dtype before it feeds a product, as in the composition.
"""
from __future__ import annotations

import triton
import triton.language as tl

from .fused_steps import layer_norm_rows, load_transposed
from .tiles import (dot_precision, fresh_map, load_pixels, map_strides, pixel_coords, pixel_grid,
                    scalar, store_pixels, tile_size, warps_for)


@triton.jit
def _project(a, w_ptr, first_row, dim, HEAD_DIM: tl.constexpr, ACC: tl.constexpr,
             PRECISION: tl.constexpr):
    """a W[first_row:first_row + d]ᵀ for a row-major (rows, d) W, accumulated in ACC, rounded
    to a's dtype."""
    w = load_transposed(w_ptr, first_row, dim, dim, HEAD_DIM, HEAD_DIM, HEAD_DIM).to(a.dtype)
    return tl.dot(a, w, input_precision=PRECISION, out_dtype=ACC).to(a.dtype)


@triton.jit
def attention_block_fwd_kernel(
        x_ptr, nw_ptr, nb_ptr, eps_ptr, w_in_ptr, bias_ptr, scale_ptr, w_out_ptr, attn_ptr, y_ptr,
        x_sb, x_sh, x_sw, y_sb, y_sh, y_sw,
        groups, group_cols, member_cols, group_row, group_col, member_row, member_col,
        N_TOK: tl.constexpr, HEAD_DIM: tl.constexpr, BLOCK_N: tl.constexpr,
        BLOCK_D: tl.constexpr, HAS_BIAS: tl.constexpr, SHARED: tl.constexpr,
        PRECISION: tl.constexpr):
    """One window. w_in: W_qkv (3d, d), or W_v (d, d) with SHARED (attn then read, not
    written)."""
    ACC: tl.constexpr = tl.float64 if x_ptr.dtype.element_ty == tl.float64 else tl.float32
    win = tl.program_id(0)
    tok = tl.arange(0, BLOCK_N)
    dim = tl.arange(0, BLOCK_D)
    tok_ok, dim_ok = tok < N_TOK, dim < HEAD_DIM
    tile_ok = tok_ok[:, None] & dim_ok[None, :]
    square_ok = tok_ok[:, None] & tok_ok[None, :]
    square = win.to(tl.int64) * (N_TOK * N_TOK) + tok[:, None] * N_TOK + tok[None, :]
    b, row, col = pixel_coords(win, tok, groups, group_cols, member_cols, group_row, group_col,
                               member_row, member_col)
    x_in = load_pixels(x_ptr, x_sb, x_sh, x_sw, b, row, col, dim, tile_ok)
    x = x_in.to(ACC)
    a = layer_norm_rows(x, tile_ok, dim, dim_ok, nw_ptr, nb_ptr, tl.load(eps_ptr).to(ACC),
                        HEAD_DIM).to(x_in.dtype)
    if SHARED:
        v = _project(a, w_in_ptr, 0, dim, HEAD_DIM, ACC, PRECISION)
        p = tl.load(attn_ptr + square, mask=square_ok, other=0.0).to(x_in.dtype)
    else:
        q = _project(a, w_in_ptr, 0, dim, HEAD_DIM, ACC, PRECISION)
        k = _project(a, w_in_ptr, HEAD_DIM, dim, HEAD_DIM, ACC, PRECISION)
        v = _project(a, w_in_ptr, 2 * HEAD_DIM, dim, HEAD_DIM, ACC, PRECISION)
        # the reference scales q in its own dtype before the product
        q = (q * tl.load(scale_ptr).to(ACC)).to(x_in.dtype)
        s = tl.dot(q, tl.trans(k), input_precision=PRECISION, out_dtype=ACC)
        if HAS_BIAS:
            s += tl.load(bias_ptr + tok[:, None] * N_TOK + tok[None, :], mask=square_ok,
                         other=0.0).to(ACC)
        # padded keys get no weight; padded query rows stay finite and are not stored
        s = tl.where(tok_ok[None, :], s, float("-inf"))
        e = tl.exp(s - tl.max(s, 1)[:, None])
        p = (e / tl.sum(e, 1)[:, None]).to(x_in.dtype)
        tl.store(attn_ptr + square, p, mask=square_ok)
    o = tl.dot(p, v, input_precision=PRECISION, out_dtype=ACC).to(x_in.dtype)
    w_out = load_transposed(w_out_ptr, 0, dim, dim, HEAD_DIM, HEAD_DIM, HEAD_DIM).to(x_in.dtype)
    y = x + tl.dot(o, w_out, input_precision=PRECISION, out_dtype=ACC)
    store_pixels(y_ptr, y_sb, y_sh, y_sw, b, row, col, dim, tile_ok, y)


# ---- launchers ------------------------------------------------------------------------------

def _launch(x, norm_weight, norm_bias, eps, w_in, bias, scale, w_out, attn, mode, window,
            shared):
    y = fresh_map(x)
    grid = pixel_grid(x.shape[1], x.shape[2], window, mode)
    d, n = x.shape[-1], window * window
    has_bias = bias is not None
    attention_block_fwd_kernel[(attn.shape[0],)](
        x, norm_weight, norm_bias, scalar(eps, x.device), w_in.contiguous(),
        bias.contiguous() if has_bias else x, x if shared else scalar(scale, x.device),
        w_out.contiguous(), attn,
        y, *map_strides(x), *map_strides(y), *grid.kernel_args(),
        N_TOK=n, HEAD_DIM=d, BLOCK_N=tile_size(n), BLOCK_D=tile_size(d), HAS_BIAS=has_bias,
        SHARED=shared, PRECISION=dot_precision(x.dtype),
        num_warps=warps_for(tile_size(n), tile_size(d)))
    return y


def attention_block_fwd(x, norm_weight, norm_bias, eps: float, w_qkv, bias, w_out, mode: str,
                        window: int, scale: float):
    """(y, attn): y a contiguous map like x, attn (windows, w*w, w*w) in x's dtype."""
    b, h, w, _ = x.shape
    n = window * window
    attn = x.new_empty((b * (h // window) * (w // window), n, n))
    y = _launch(x, norm_weight, norm_bias, eps, w_qkv, bias, scale, w_out, attn, mode, window,
                shared=False)
    return y, attn


def shared_attention_block_fwd(x, norm_weight, norm_bias, eps: float, w_v, attn, w_out,
                               mode: str, window: int):
    """y, a contiguous map like x."""
    return _launch(x, norm_weight, norm_bias, eps, w_v, None, None, w_out, attn.contiguous(),
                   mode, window, shared=True)

