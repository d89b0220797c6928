"""Steps the Triton kernels share inside a tile: LayerNorm of a tile's pixel rows, a weight
matrix loaded transposed for ``tl.dot``, and the normal distribution of GELU."""
from __future__ import annotations

import triton
import triton.language as tl


@triton.jit
def layer_norm_rows(x, ok, ch, ch_ok, weight_ptr, bias_ptr, eps, CHANNELS: tl.constexpr):
    """LayerNorm over the channel axis of a (pixels, BLOCK_C) tile ``x`` (in the accumulation
    dtype; ``ok`` its valid entries, ``ch`` the channel indices): padded channels stay 0."""
    mean = tl.sum(x, 1) / CHANNELS
    xc = tl.where(ok, x - mean[:, None], 0.0)
    rstd = 1.0 / tl.sqrt(tl.sum(xc * xc, 1) / CHANNELS + eps)
    w = tl.load(weight_ptr + ch, mask=ch_ok, other=0.0).to(x.dtype)
    b = tl.load(bias_ptr + ch, mask=ch_ok, other=0.0).to(x.dtype)
    return xc * rstd[:, None] * w[None, :] + b[None, :]


@triton.jit
def load_transposed(w_ptr, first_row, out_idx, in_idx, n_out, n_in, row_stride):
    """(in, out) tile of a row-major weight W (rows = outputs): element [i, o] =
    W[first_row + o, i], 0 where i >= n_in or o >= n_out; ``a @ tile`` is a Wᵀ."""
    return tl.load(w_ptr + (first_row + out_idx)[None, :] * row_stride + in_idx[:, None],
                   mask=(in_idx < n_in)[:, None] & (out_idx < n_out)[None, :], other=0.0)


@triton.jit
def normal_cdf_pdf(x):
    """Phi(x) and phi(x) of the standard normal distribution (GELU(x) = x Phi(x))."""
    cdf = 0.5 * (1.0 + tl.math.erf(x * 0.7071067811865476))
    pdf = tl.exp(-0.5 * x * x) * 0.3989422804014327
    return cdf, pdf
