"""Input validation shared by every backend of the window operators (clear errors, no silent
wrong answers)."""
from __future__ import annotations

import torch

from ..reference.functional import CHANNEL_MODES, MODES

MAX_HEAD_DIM = 64
FLOAT_DTYPES = (torch.float32, torch.float64, torch.bfloat16, torch.float16)


def _tensor(name, t):
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if t.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{name} must be float32/float64/bfloat16/float16, got {t.dtype}")


def _same(ref_name, ref, name, t):
    if t.device != ref.device:
        raise ValueError(f"{name} is on {t.device} but {ref_name} is on {ref.device}")
    if t.dtype != ref.dtype:
        raise TypeError(f"{name} has dtype {t.dtype} but {ref_name} has {ref.dtype}")


def _window(window):
    if not isinstance(window, int) or window < 1:
        raise ValueError(f"window must be a positive int, got {window!r}")


def check_map(name, x, window, max_dim=MAX_HEAD_DIM):
    """x must be a (B, H, W, d) float map with H, W multiples of window and d <= max_dim."""
    _tensor(name, x)
    if x.dim() != 4:
        raise ValueError(f"{name} must be (B, H, W, d) channels-last, got shape {tuple(x.shape)}")
    b, h, w, d = x.shape
    if h % window or w % window:
        raise ValueError(f"{name}: H and W must be multiples of window={window}, got H={h}, W={w}")
    if max_dim is not None and d > max_dim:
        raise ValueError(f"{name}: head dim d={d} exceeds the supported maximum {max_dim}")
    if d < 1 or b < 1:
        raise ValueError(f"{name}: empty tensor of shape {tuple(x.shape)}")
    if x.stride(-1) != 1:
        raise ValueError(f"{name} must have a unit stride on the channel axis (channels-last), "
                         f"got strides {x.stride()}")


def check_window_attention(q, k, v, bias, mode, window, scale):
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    _window(window)
    check_map("q", q, window)
    for name, t in (("k", k), ("v", v)):
        check_map(name, t, window)
        _same("q", q, name, t)
        if t.shape != q.shape:
            raise ValueError(f"{name} has shape {tuple(t.shape)} but q has {tuple(q.shape)}")
    if bias is not None:
        _tensor("bias", bias)
        _same("q", q, "bias", bias)
        n = window * window
        if tuple(bias.shape) != (n, n):
            raise ValueError(f"bias must be ({n}, {n}) for window={window}, got {tuple(bias.shape)}")
    if scale is None:
        # d ** -0.5 in double precision: under torch.jit.trace q.shape[-1] is a 0-dim int64
        # tensor, whose ** -0.5 would be rounded to float32 and baked into the trace
        scale = float(q.shape[-1]) ** -0.5
    return float(scale)


def num_windows(x, window):
    b, h, w, _ = x.shape
    return b * (h // window) * (w // window)


def check_shared_window_attention(attn, v, mode, window):
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    _window(window)
    check_map("v", v, window)
    _tensor("attn", attn)
    _same("v", v, "attn", attn)
    n = window * window
    expected = (num_windows(v, window), n, n)
    if tuple(attn.shape) != expected:
        raise ValueError(f"attn must be {expected} (windows, w*w, w*w) for v of shape "
                         f"{tuple(v.shape)}, got {tuple(attn.shape)}")


def check_channel_attention(q, k, v, temperature, mode, window):
    if mode not in CHANNEL_MODES:
        raise ValueError(f"mode must be one of {CHANNEL_MODES}, got {mode!r}")
    _window(window)
    check_map("q", q, window, max_dim=None)
    for name, t in (("k", k), ("v", v)):
        check_map(name, t, window, max_dim=None)
        _same("q", q, name, t)
        if t.shape != q.shape:
            raise ValueError(f"{name} has shape {tuple(t.shape)} but q has {tuple(q.shape)}")
    _tensor("temperature", temperature)
    _same("q", q, "temperature", temperature)
    if temperature.numel() != 1:
        raise ValueError(f"temperature must have one element, got shape {tuple(temperature.shape)}")
