"""Depthwise 3x3 convolution (zero padding 1) of a channels-last (B, H, W, C) map with an
epilogue ("none", "gelu", or "gate": GELU(first half) * second half): Triton kernels and the
launchers of the operators ``asid_fast::triton_depthwise_conv3x3_fwd/_bwd`` (schemas, fake
kernels, autograd and FLOP formulas: :mod:`asid_fast.ops.depthwise_conv3x3`).

One program computes BLOCK_W pixels of one image row for all output channels; the input is read
through its strides, taps are the weight as a tap-major (9, C) matrix. Arithmetic in float32
(float64 for float64 maps). Backward: grad_pre (the gradient at the convolution's output,
recomputing it) by one kernel, dx by the forward kernel run on grad_pre with flipped taps, and
(dtaps, dbias) as per-program partials summed afterwards.
"""
from __future__ import annotations

import triton
import triton.language as tl
from torch import Tensor

from .fused_steps import normal_cdf_pdf
from .tiles import accumulator_dtype, fresh_map, map_strides

EPILOGUES = {"none": 0, "gelu": 1, "gate": 2}
TILE_ELEMENTS = 4096  # pixels x padded channels per program


@triton.jit
def _conv_tile(x_ptr, taps_ptr, bias_ptr, sb, sh, sw, b, h, w, c, H, W, C, w_ok, c_ok,
               ACC: tl.constexpr, HAS_BIAS: tl.constexpr, BLOCK_W: tl.constexpr,
               BLOCK_C: tl.constexpr):
    """(BLOCK_W, BLOCK_C) tile of bias[c] + sum_t x[b, h + dy - 1, w + dx - 1, c] taps[t, c]."""
    acc = tl.zeros([BLOCK_W, BLOCK_C], dtype=ACC)
    for t in tl.static_range(9):
        # hh as a block, not a scalar: the interpreter rejects masks broadcast from scalars
        hh = h + t // 3 - 1 + tl.zeros_like(w)
        ww = w + t % 3 - 1
        ok = w_ok & (ww >= 0) & (ww < W) & (hh >= 0) & (hh < H)
        v = tl.load(x_ptr + b * sb + hh[:, None] * sh + ww[:, None] * sw + c[None, :],
                    mask=ok[:, None] & c_ok[None, :], other=0.0).to(ACC)
        k = tl.load(taps_ptr + t * C + c, mask=c_ok, other=0.0).to(ACC)
        acc += v * k[None, :]
    if HAS_BIAS:
        acc += tl.load(bias_ptr + c, mask=c_ok, other=0.0).to(ACC)[None, :]
    return acc


@triton.jit
def _program_pixels(H, W, BLOCK_W: tl.constexpr, BLOCK_C: tl.constexpr):
    bh = tl.program_id(0)
    w = tl.program_id(1) * BLOCK_W + tl.arange(0, BLOCK_W)
    return bh, bh // H, bh % H, w, tl.arange(0, BLOCK_C)


@triton.jit
def dwconv_fwd_kernel(x_ptr, taps_ptr, bias_ptr, out_ptr, sb, sh, sw, H, W, C, COUT,
                      EPILOGUE: tl.constexpr, HAS_BIAS: tl.constexpr, BLOCK_W: tl.constexpr,
                      BLOCK_C: tl.constexpr):
    """out[b, h, w, :COUT] = epilogue(conv) with COUT = C/2 for the gate, else C."""
    ACC: tl.constexpr = tl.float64 if x_ptr.dtype.element_ty == tl.float64 else tl.float32
    bh, b, h, w, c = _program_pixels(H, W, BLOCK_W, BLOCK_C)
    w_ok, c_ok = w < W, c < COUT
    y = _conv_tile(x_ptr, taps_ptr, bias_ptr, sb, sh, sw, b, h, w, c, H, W, C, w_ok, c_ok, ACC,
                   HAS_BIAS, BLOCK_W, BLOCK_C)
    if EPILOGUE != 0:
        cdf, _ = normal_cdf_pdf(y)
        y = y * cdf
    if EPILOGUE == 2:
        y = y * _conv_tile(x_ptr, taps_ptr, bias_ptr, sb, sh, sw, b, h, w, c + COUT, H, W, C,
                           w_ok, c_ok, ACC, HAS_BIAS, BLOCK_W, BLOCK_C)
    offs = (bh * W + w)[:, None] * COUT + c[None, :]
    tl.store(out_ptr + offs, y.to(out_ptr.dtype.element_ty), mask=w_ok[:, None] & c_ok[None, :])


@triton.jit
def dwconv_grad_pre_kernel(x_ptr, taps_ptr, bias_ptr, go_ptr, gp_ptr, sb, sh, sw, H, W, C, COUT,
                           EPILOGUE: tl.constexpr, HAS_BIAS: tl.constexpr,
                           BLOCK_W: tl.constexpr, BLOCK_C: tl.constexpr):
    """grad_pre (contiguous, C channels) of the GELU (EPILOGUE 1) or gate (2) epilogue."""
    ACC: tl.constexpr = tl.float64 if x_ptr.dtype.element_ty == tl.float64 else tl.float32
    bh, b, h, w, c = _program_pixels(H, W, BLOCK_W, BLOCK_C)
    w_ok, c_ok = w < W, c < COUT
    mask = w_ok[:, None] & c_ok[None, :]
    a = _conv_tile(x_ptr, taps_ptr, bias_ptr, sb, sh, sw, b, h, w, c, H, W, C, w_ok, c_ok, ACC,
                   HAS_BIAS, BLOCK_W, BLOCK_C)
    g = tl.load(go_ptr + (bh * W + w)[:, None] * COUT + c[None, :], mask=mask, other=0.0).to(ACC)
    cdf, pdf = normal_cdf_pdf(a)
    d = cdf + a * pdf  # GELU'(a)
    gp = gp_ptr + (bh * W + w)[:, None] * C + c[None, :]
    if EPILOGUE == 1:
        tl.store(gp, (g * d).to(gp_ptr.dtype.element_ty), mask=mask)
    else:
        second = _conv_tile(x_ptr, taps_ptr, bias_ptr, sb, sh, sw, b, h, w, c + COUT, H, W, C,
                            w_ok, c_ok, ACC, HAS_BIAS, BLOCK_W, BLOCK_C)
        tl.store(gp, (g * second * d).to(gp_ptr.dtype.element_ty), mask=mask)
        tl.store(gp + COUT, (g * a * cdf).to(gp_ptr.dtype.element_ty), mask=mask)


@triton.jit
def dwconv_dtaps_kernel(x_ptr, gp_ptr, partial_ptr, sb, sh, sw, H, W, C, BLOCK_W: tl.constexpr,
                        BLOCK_C: tl.constexpr):
    """partial[program, t, c] = sum over the program's pixels of grad_pre * x shifted by tap t;
    partial[program, 9, c] = sum of grad_pre (the bias gradient)."""
    ACC: tl.constexpr = tl.float64 if x_ptr.dtype.element_ty == tl.float64 else tl.float32
    bh, b, h, w, c = _program_pixels(H, W, BLOCK_W, BLOCK_C)
    w_ok, c_ok = w < W, c < C
    g = tl.load(gp_ptr + (bh * W + w)[:, None] * C + c[None, :],
                mask=w_ok[:, None] & c_ok[None, :], other=0.0).to(ACC)
    out = partial_ptr + (tl.program_id(0) * tl.num_programs(1) + tl.program_id(1)) * 10 * C + c
    for t in tl.static_range(9):
        hh = h + t // 3 - 1 + tl.zeros_like(w)  # a block (see _conv_tile)
        ww = w + t % 3 - 1
        ok = w_ok & (ww >= 0) & (ww < W) & (hh >= 0) & (hh < H)
        v = tl.load(x_ptr + b * sb + hh[:, None] * sh + ww[:, None] * sw + c[None, :],
                    mask=ok[:, None] & c_ok[None, :], other=0.0).to(ACC)
        tl.store(out + t * C, tl.sum(g * v, axis=0), mask=c_ok)
    tl.store(out + 9 * C, tl.sum(g, axis=0), mask=c_ok)


def _grid(x: Tensor, cout: int):
    b, h, w, _ = x.shape
    block_c = triton.next_power_of_2(cout)
    block_w = max(1, min(TILE_ELEMENTS // block_c, triton.next_power_of_2(w)))
    return (b * h, triton.cdiv(w, block_w)), dict(BLOCK_W=block_w, BLOCK_C=block_c)


def _taps(weight: Tensor, flipped: bool = False) -> Tensor:
    """(C, 1, 3, 3) -> tap-major (9, C): taps[3 dy + dx, c] (flipped: taps[8 - t])."""
    w = weight.flip(2, 3) if flipped else weight
    return w.reshape(w.shape[0], 9).t().contiguous()


def _out_channels(c: int, epilogue: str) -> int:
    return c // 2 if epilogue == "gate" else c


def _launch_conv(x, taps, bias, out, epilogue: str):
    b, h, w, c = x.shape
    cout = _out_channels(c, epilogue)
    grid, tiles = _grid(x, cout)
    dwconv_fwd_kernel[grid](x, taps, bias if bias is not None else taps, out, *map_strides(x), h,
                            w, c, cout, EPILOGUE=EPILOGUES[epilogue], HAS_BIAS=bias is not None,
                            **tiles)


def depthwise_conv3x3_fwd(x, weight, bias, epilogue: str):
    """out (B, H, W, C or C/2)."""
    b, h, w, c = x.shape
    out = x.new_empty((b, h, w, _out_channels(c, epilogue)))
    _launch_conv(x, _taps(weight), bias, out, epilogue)
    return out


def depthwise_conv3x3_bwd(grad_out, x, weight, bias, epilogue: str):
    """(dx, dweight, dbias)."""
    b, h, w, c = x.shape
    grad_out = grad_out.contiguous()
    if epilogue == "none":
        grad_pre = grad_out
    else:
        grad_pre = fresh_map(x)
        grid, tiles = _grid(x, _out_channels(c, epilogue))
        dwconv_grad_pre_kernel[grid](x, _taps(weight), bias if bias is not None else x, grad_out,
                                     grad_pre, *map_strides(x), h, w, c,
                                     _out_channels(c, epilogue), EPILOGUE=EPILOGUES[epilogue],
                                     HAS_BIAS=bias is not None, **tiles)
    dx = fresh_map(x)
    _launch_conv(grad_pre, _taps(weight, flipped=True), None, dx, "none")
    grid, tiles = _grid(x, c)
    partials = x.new_empty((grid[0] * grid[1], 10, c), dtype=accumulator_dtype(x.dtype))
    dwconv_dtaps_kernel[grid](x, grad_pre, partials, *map_strides(x), h, w, c, **tiles)
    sums = partials.sum(0).to(weight.dtype)  # (10, C)
    return dx, sums[:9].t().reshape(c, 1, 3, 3).contiguous(), sums[9].clone()
