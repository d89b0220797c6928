"""Public fused window operators (``asid_fast.ops``). Shapes and layout: see each docstring and
``asid_fast.reference.functional``; all inputs are channels-last maps."""
from __future__ import annotations

from . import _checks
from .dispatch import resolve


def window_attention(q, k, v, bias=None, *, mode="meso", window=8, scale=None, backend="auto"):
    """Fused window attention, returning the attention matrix for sharing.

    q, k, v: (B, H, W, d), H and W multiples of ``window``, d <= 64, unit channel stride (may be
    strided views of one (B, H, W, 3d) projection). bias: (w*w, w*w) or None. scale defaults to
    d**-0.5 and multiplies q. Returns out (B, H, W, d) and attn (B*H/w*W/w, w*w, w*w) in window
    order (batch, X, Y), softmax over the last axis.
    """
    scale = _checks.check_window_attention(q, k, v, bias, mode, window, scale)
    return resolve(backend, q.device, q.dtype).window_attention(q, k, v, bias, mode, window, scale)


def shared_window_attention(attn, v, *, mode="meso", window=8, backend="auto"):
    """Apply a stored attention matrix: attn (B*H/w*W/w, w*w, w*w), v (B, H, W, d) -> (B, H, W, d)."""
    _checks.check_shared_window_attention(attn, v, mode, window)
    return resolve(backend, v.device, v.dtype).shared_window_attention(attn, v, mode, window)


def channel_attention(q, k, v, temperature, *, mode="window", window=8, backend="auto"):
    """Channel attention per pixel group (``mode`` "window" or "cell"), channels-last.

    q, k, v: (B, H, W, C); temperature: one element. Per group, L2-normalised q/k channel rows,
    A = softmax(q k^T * temperature) (C x C), out = A v: (B, H, W, C).
    """
    _checks.check_channel_attention(q, k, v, temperature, mode, window)
    return resolve(backend, q.device, q.dtype).channel_attention(q, k, v, temperature, mode, window)
