"""The convolution chain of :mod:`asid_fast.ops.conv_chain` (the gated FFN, the local module's
head, the projections of the attentions) in Triton: the launcher of the operator
``asid_fast::triton_conv_chain_fwd`` (schema, fake kernel, autograd: that module).

Programs compute BLOCK_W pixels of one image row. The projection p = GELU?(LN?(x) W_inᵀ + b_in)
reads x's pixels, normalises them (LayerNorm) and projects them in one tl.dot. Without the
depthwise convolution one kernel does everything at each pixel. With it, a first kernel writes p
as a map (in the map's dtype, as the composition rounds it) and the second reads each pixel's
3x3 neighbourhood of p (zero off the map: the convolution's padding): one write and, through
the L2 cache, about one read of the intermediate map, instead of recomputing the projection at
all nine taps. Then the bias, the epilogue ("gelu", or "gate": GELU(first half) * second half,
the halves of W_in computed apart) and the output projection with the residual
(y = x + m W_outᵀ). Accumulation in float32 (float64 for float64 maps); p and m are rounded to
the map's dtype where the composition rounds them.
"""
from __future__ import annotations

import triton
import triton.language as tl

from .fused_steps import layer_norm_rows, load_transposed, normal_cdf_pdf
from .tiles import dot_precision, map_strides, scalar, tile_size

EPILOGUES = {"none": 0, "gelu": 1, "gate": 2}
BLOCK_W = 32  # pixels per program (>= 16: the rows of a tl.dot)


@triton.jit
def _projection(x_ptr, nw_ptr, nb_ptr, eps, w_in_ptr, b_in_ptr, first_row, sb, sh, sw, b, h, w,
                W, ch, ch_ok, out, K: tl.constexpr, N_MID: tl.constexpr, HAS_NORM: tl.constexpr,
                HAS_B_IN: tl.constexpr, GELU_IN: tl.constexpr, ACC: tl.constexpr,
                PRECISION: tl.constexpr):
    """p = GELU?(LN?(x) W_in[first_row:first_row + N_MID]ᵀ + b_in) at pixels (b, h, w < W), in
    x's dtype."""
    ok = (w < W)[:, None] & ch_ok[None, :]
    x = tl.load(x_ptr + (b * sb + h * sh + w * sw)[:, None] + ch[None, :], mask=ok, other=0.0)
    a = x
    if HAS_NORM:
        a = layer_norm_rows(x.to(ACC), ok, ch, ch_ok, nw_ptr, nb_ptr, eps, K).to(x.dtype)
    w_in = load_transposed(w_in_ptr, first_row, out, ch, N_MID, K, K).to(x.dtype)
    p = tl.dot(a, w_in, input_precision=PRECISION, out_dtype=ACC)
    if HAS_B_IN:
        p += tl.load(b_in_ptr + first_row + out, mask=out < N_MID, other=0.0).to(ACC)
    p = p.to(x.dtype)
    if GELU_IN:
        cdf, _ = normal_cdf_pdf(p.to(ACC))
        p = (p.to(ACC) * cdf).to(x.dtype)
    return p


@triton.jit
def _depthwise_half(x_ptr, nw_ptr, nb_ptr, eps, w_in_ptr, b_in_ptr, p_ptr, w_dw_ptr, b_dw_ptr,
                    first_row, sb, sh, sw, b, h, w, H, W, ch, ch_ok, out,
                    K: tl.constexpr, N_MID: tl.constexpr, N_IN: tl.constexpr,
                    HAS_NORM: tl.constexpr, HAS_B_IN: tl.constexpr, GELU_IN: tl.constexpr,
                    HAS_DW: tl.constexpr, HAS_B_DW: tl.constexpr, ACC: tl.constexpr,
                    BLOCK_W: tl.constexpr, BLOCK_N: tl.constexpr, PRECISION: tl.constexpr):
    """Channels first_row..first_row + N_MID of the depthwise 3x3 convolution of the map p
    ((B, H, W, N_IN), contiguous) plus b_dw, in ACC; without HAS_DW the projection itself at
    (b, h, w), computed here."""
    out_ok = out < N_MID
    if HAS_DW:
        acc = tl.zeros([BLOCK_W, BLOCK_N], dtype=ACC)
        for t in range(9):
            hh, ww = h + t // 3 - 1 + tl.zeros_like(w), w + t % 3 - 1
            on_map = (ww >= 0) & (ww < W) & (hh >= 0) & (hh < H)
            p = tl.load(p_ptr + ((b * H + hh) * W + ww)[:, None] * N_IN + first_row
                        + out[None, :], mask=on_map[:, None] & out_ok[None, :], other=0.0)
            tap = tl.load(w_dw_ptr + (first_row + out) * 9 + t, mask=out_ok, other=0.0)
            acc += p.to(ACC) * tap.to(ACC)[None, :]
        if HAS_B_DW:
            acc += tl.load(b_dw_ptr + first_row + out, mask=out_ok, other=0.0).to(ACC)[None, :]
    else:
        acc = _projection(x_ptr, nw_ptr, nb_ptr, eps, w_in_ptr, b_in_ptr, first_row, sb, sh, sw,
                          b, h, w, W, ch, ch_ok, out, K, N_MID, HAS_NORM, HAS_B_IN, GELU_IN, ACC,
                          PRECISION).to(ACC)
    return acc


@triton.jit
def conv_chain_project_kernel(
        x_ptr, nw_ptr, nb_ptr, eps_ptr, w_in_ptr, b_in_ptr, p_ptr, sb, sh, sw, H, W,
        K: tl.constexpr, N_MID: tl.constexpr, HALVES: tl.constexpr, HAS_NORM: tl.constexpr,
        HAS_B_IN: tl.constexpr, GELU_IN: tl.constexpr, BLOCK_W: tl.constexpr,
        BLOCK_K: tl.constexpr, BLOCK_N: tl.constexpr, PRECISION: tl.constexpr):
    """p[b, h, w0:w0 + BLOCK_W] = GELU?(LN?(x) W_inᵀ + b_in); p is contiguous with HALVES *
    N_MID channels, computed N_MID at a time."""
    ACC: tl.constexpr = tl.float64 if x_ptr.dtype.element_ty == tl.float64 else tl.float32
    bh = tl.program_id(0).to(tl.int64)
    b, h = bh // H, bh % H
    w = tl.program_id(1) * BLOCK_W + tl.arange(0, BLOCK_W)
    ch = tl.arange(0, BLOCK_K)
    out = tl.arange(0, BLOCK_N)
    eps = 0.0
    if HAS_NORM:
        eps = tl.load(eps_ptr).to(ACC)
    ok = (w < W)[:, None] & (out < N_MID)[None, :]
    for half in tl.static_range(HALVES):
        p = _projection(x_ptr, nw_ptr, nb_ptr, eps, w_in_ptr, b_in_ptr, half * N_MID, sb, sh, sw,
                        b, h, w, W, ch, ch < K, out, K, N_MID, HAS_NORM, HAS_B_IN, GELU_IN, ACC,
                        PRECISION)
        tl.store(p_ptr + (bh * W + w)[:, None] * (HALVES * N_MID) + half * N_MID + out[None, :],
                 p.to(p_ptr.dtype.element_ty), mask=ok)


@triton.jit
def conv_chain_fwd_kernel(
        x_ptr, nw_ptr, nb_ptr, eps_ptr, w_in_ptr, b_in_ptr, p_ptr, w_dw_ptr, b_dw_ptr, w_out_ptr,
        y_ptr, sb, sh, sw, H, W, K: tl.constexpr, N_MID: tl.constexpr, N_OUT: tl.constexpr,
        HAS_NORM: tl.constexpr, HAS_B_IN: tl.constexpr, GELU_IN: tl.constexpr,
        HAS_DW: tl.constexpr, HAS_B_DW: tl.constexpr, EPILOGUE: tl.constexpr,
        HAS_OUT: tl.constexpr, BLOCK_W: tl.constexpr, BLOCK_K: tl.constexpr,
        BLOCK_N: tl.constexpr, PRECISION: tl.constexpr):
    """y[b, h, w0:w0 + BLOCK_W] of the chain; y is contiguous with N_OUT channels. With HAS_DW
    p_ptr is the projection's map (conv_chain_project_kernel)."""
    N_IN: tl.constexpr = 2 * N_MID if EPILOGUE == 2 else N_MID
    ACC: tl.constexpr = tl.float64 if x_ptr.dtype.element_ty == tl.float64 else tl.float32
    bh = tl.program_id(0).to(tl.int64)
    b, h = bh // H, bh % H
    w = tl.program_id(1) * BLOCK_W + tl.arange(0, BLOCK_W)
    ch = tl.arange(0, BLOCK_K)
    ch_ok = ch < K
    out = tl.arange(0, BLOCK_N)
    eps = 0.0
    if HAS_NORM:
        eps = tl.load(eps_ptr).to(ACC)
    m = _depthwise_half(x_ptr, nw_ptr, nb_ptr, eps, w_in_ptr, b_in_ptr, p_ptr, w_dw_ptr, b_dw_ptr,
                        0, sb, sh, sw, b, h, w, H, W, ch, ch_ok, out, K, N_MID, N_IN, HAS_NORM,
                        HAS_B_IN, GELU_IN, HAS_DW, HAS_B_DW, ACC, BLOCK_W, BLOCK_N, PRECISION)
    if EPILOGUE != 0:
        cdf, _ = normal_cdf_pdf(m)
        m = m * cdf
    if EPILOGUE == 2:
        m = m * _depthwise_half(x_ptr, nw_ptr, nb_ptr, eps, w_in_ptr, b_in_ptr, p_ptr, w_dw_ptr,
                                b_dw_ptr, N_MID, sb, sh, sw, b, h, w, H, W, ch, ch_ok, out, K,
                                N_MID, N_IN, HAS_NORM, HAS_B_IN, GELU_IN, HAS_DW, HAS_B_DW, ACC,
                                BLOCK_W, BLOCK_N, PRECISION)
    w_ok = w < W
    if HAS_OUT:
        x_ok = w_ok[:, None] & ch_ok[None, :]
        x = tl.load(x_ptr + (b * sb + h * sh + w * sw)[:, None] + ch[None, :], mask=x_ok,
                    other=0.0)
        w_out = load_transposed(w_out_ptr, 0, ch, out, K, N_MID, N_MID).to(x.dtype)
        y = x.to(ACC) + tl.dot(m.to(x.dtype), w_out, input_precision=PRECISION, out_dtype=ACC)
        tl.store(y_ptr + (bh * W + w)[:, None] * N_OUT + ch[None, :],
                 y.to(y_ptr.dtype.element_ty), mask=x_ok)
    else:
        tl.store(y_ptr + (bh * W + w)[:, None] * N_OUT + out[None, :],
                 m.to(y_ptr.dtype.element_ty), mask=w_ok[:, None] & (out < N_MID)[None, :])


def conv_chain_fwd(x, norm_weight, norm_bias, eps: float, w_in, b_in, gelu_in: bool, w_dw, b_dw,
                   epilogue: str, w_out):
    """The chain's output: a contiguous (B, H, W, K if w_out else n_mid) map in x's dtype."""
    b, h, w, k = x.shape
    halves = 2 if epilogue == "gate" else 1
    n_mid = w_in.shape[0] // halves
    n_out = k if w_out is not None else n_mid
    y = x.new_empty((b, h, w, n_out))
    present = [t.contiguous() if t is not None else x
               for t in (norm_weight, norm_bias, w_in, b_in, w_dw, b_dw, w_out)]
    nw, nb, w_in_c, b_in_c, w_dw_c, b_dw_c, w_out_c = present
    has_norm = norm_weight is not None
    eps_t = scalar(eps, x.device) if has_norm else x
    grid = (b * h, triton.cdiv(w, BLOCK_W))
    common = dict(K=k, N_MID=n_mid, HAS_NORM=has_norm, HAS_B_IN=b_in is not None,
                  GELU_IN=gelu_in, BLOCK_W=BLOCK_W, BLOCK_K=tile_size(k),
                  BLOCK_N=tile_size(n_mid), PRECISION=dot_precision(x.dtype), num_warps=4)
    p = x
    if w_dw is not None:
        p = x.new_empty((b, h, w, halves * n_mid))
        conv_chain_project_kernel[grid](x, nw, nb, eps_t, w_in_c, b_in_c, p, *map_strides(x), h,
                                        w, HALVES=halves, **common)
    conv_chain_fwd_kernel[grid](
        x, nw, nb, eps_t, w_in_c, b_in_c, p, w_dw_c, b_dw_c, w_out_c, y, *map_strides(x), h, w,
        N_OUT=n_out, HAS_DW=w_dw is not None, HAS_B_DW=b_dw is not None,
        EPILOGUE=EPILOGUES[epilogue], HAS_OUT=w_out is not None, **common)
    return y
