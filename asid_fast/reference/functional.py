"""Plain-PyTorch reference implementations of ASID's window operations.

These are the ground truth every fused kernel is tested against, and they are what the reference
model (``asid_fast.reference.ASID``) runs. Layout conventions (see ``ASID_SPEC.md``):

* feature maps are channels-last ``(B, H, W, d)``; H and W are multiples of the window ``w``;
* ``mode="meso"``: token (i, j) of window (X, Y) is pixel (w*X + i, w*Y + j);
* ``mode="global"``: token (i, j) of window (X, Y) is pixel (i*H/w + X, j*W/w + Y);
* windows are ordered batch, X, Y; the w*w tokens of a window row-major (i, j).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

MODES = ("meso", "global")


def window_partition(x: torch.Tensor, mode: str, window: int) -> torch.Tensor:
    """(B, H, W, d) -> (B * H/w * W/w, w*w, d) tokens in window order."""
    b, h, w_, d = x.shape
    nx, ny = h // window, w_ // window
    if mode == "meso":  # axes (B, X, i, Y, j, d)
        t = x.reshape(b, nx, window, ny, window, d).permute(0, 1, 3, 2, 4, 5)
    elif mode == "global":  # axes (B, i, X, j, Y, d)
        t = x.reshape(b, window, nx, window, ny, d).permute(0, 2, 4, 1, 3, 5)
    else:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    return t.reshape(b * nx * ny, window * window, d)


def window_merge(t: torch.Tensor, mode: str, window: int, h: int, w_: int) -> torch.Tensor:
    """Inverse of :func:`window_partition`: (B * H/w * W/w, w*w, d) -> (B, H, W, d)."""
    nx, ny = h // window, w_ // window
    d = t.shape[-1]
    t = t.reshape(-1, nx, ny, window, window, d)  # (B, X, Y, i, j, d)
    if mode == "meso":
        x = t.permute(0, 1, 3, 2, 4, 5)
    elif mode == "global":
        x = t.permute(0, 3, 1, 4, 2, 5)
    else:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    return x.reshape(-1, h, w_, d)


def relative_position_index(window: int = 8) -> torch.Tensor:
    """(w*w, w*w) long table: entry [q, k] = (i1 - i2 + w - 1) * (2w - 1) + (j1 - j2 + w - 1)."""
    i, j = torch.meshgrid(torch.arange(window), torch.arange(window), indexing="ij")
    i, j = i.reshape(-1), j.reshape(-1)
    di = i[:, None] - i[None, :] + window - 1
    dj = j[:, None] - j[None, :] + window - 1
    return di * (2 * window - 1) + dj


def window_attention(q, k, v, bias=None, *, mode="meso", window=8, scale=None):
    """Windowed single-head attention on channels-last maps.

    q, k, v: (B, H, W, d); bias: (w*w, w*w) or None; scale defaults to d**-0.5 (applied to q).
    Returns out (B, H, W, d) and attn (B * H/w * W/w, w*w, w*w), softmax over keys.
    """
    h, w_ = q.shape[1], q.shape[2]
    if scale is None:
        scale = q.shape[-1] ** -0.5
    qt = window_partition(q, mode, window) * scale
    kt = window_partition(k, mode, window)
    vt = window_partition(v, mode, window)
    s = qt @ kt.transpose(-2, -1)
    if bias is not None:
        s = s + bias
    attn = s.softmax(dim=-1)
    out = window_merge(attn @ vt, mode, window, h, w_)
    return out, attn


def shared_window_attention(attn, v, *, mode="meso", window=8):
    """Apply a stored attention matrix: attn (N, w*w, w*w), v (B, H, W, d) -> (B, H, W, d)."""
    h, w_ = v.shape[1], v.shape[2]
    vt = window_partition(v, mode, window)
    return window_merge(attn @ vt, mode, window, h, w_)


CHANNEL_MODES = ("window", "cell")


def channel_group_partition(x: torch.Tensor, mode: str, window: int) -> torch.Tensor:
    """Pixels grouped for channel attention: (B, H, W, C) -> (groups, n, C).

    ``"window"``: group (X, Y) holds pixels (w*X + i, w*Y + j), n = w*w (groups ordered B, X, Y).
    ``"cell"``: group (i, j) holds the same offset in every cell, n = H*W/w^2 (ordered B, i, j;
    pixels inside a group ordered X, Y).
    """
    b, h, w_, c = x.shape
    nx, ny = h // window, w_ // window
    t = x.reshape(b, nx, window, ny, window, c)  # (B, X, i, Y, j, C)
    if mode == "window":
        t = t.permute(0, 1, 3, 2, 4, 5).reshape(b * nx * ny, window * window, c)
    elif mode == "cell":
        t = t.permute(0, 2, 4, 1, 3, 5).reshape(b * window * window, nx * ny, c)
    else:
        raise ValueError(f"mode must be one of {CHANNEL_MODES}, got {mode!r}")
    return t


def channel_group_merge(t: torch.Tensor, mode: str, window: int, h: int, w_: int) -> torch.Tensor:
    """Inverse of :func:`channel_group_partition`."""
    nx, ny = h // window, w_ // window
    c = t.shape[-1]
    if mode == "window":
        x = t.reshape(-1, nx, ny, window, window, c).permute(0, 1, 3, 2, 4, 5)
    elif mode == "cell":
        x = t.reshape(-1, window, window, nx, ny, c).permute(0, 3, 1, 4, 2, 5)
    else:
        raise ValueError(f"mode must be one of {CHANNEL_MODES}, got {mode!r}")
    return x.reshape(-1, h, w_, c)


def channel_attention(q, k, v, temperature, *, mode="window", window=8):
    """Channel (transposed) attention per pixel group, channels-last.

    q, k, v: (B, H, W, C); temperature: tensor with one element. For each group of n pixels,
    q and k rows (one per channel, length n) are L2-normalised (eps 1e-12),
    A = softmax(q k^T * temperature) is C x C, and out = A v scattered back: (B, H, W, C).
    """
    h, w_ = q.shape[1], q.shape[2]
    qt = F.normalize(channel_group_partition(q, mode, window), dim=-2, eps=1e-12)
    kt = F.normalize(channel_group_partition(k, mode, window), dim=-2, eps=1e-12)
    vt = channel_group_partition(v, mode, window)
    attn = (qt.transpose(-2, -1) @ kt * temperature.reshape(())).softmax(dim=-1)  # (G, C, C)
    out = vt @ attn.transpose(-2, -1)  # out[n, c] = sum_c' A[c, c'] v[n, c']
    return channel_group_merge(out, mode, window, h, w_)


def layer_norm2d(x, weight, bias, eps=1e-6):
    """LayerNorm over the channel axis of an NCHW map (biased variance), per pixel."""
    mu = x.mean(1, keepdim=True)
    var = (x - mu).pow(2).mean(1, keepdim=True)
    y = (x - mu) / torch.sqrt(var + eps)
    return weight.reshape(1, -1, 1, 1) * y + bias.reshape(1, -1, 1, 1)
