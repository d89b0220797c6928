"""Input validation shared by every backend of the window operators (clear errors, no silent
wrong answers)."""
from __future__ import annotations

import torch

from ..reference.functional import CHANNEL_MODES, MODES

MAX_HEAD_DIM = 64
FLOAT_DTYPES = (torch.float32, torch.float64, torch.bfloat16, torch.float16)
AUTOCAST_DTYPES = (torch.float32, torch.bfloat16, torch.float16)  # what autocast casts


def autocast_inputs(*tensors):
    """``tensors`` cast as ``torch.autocast`` would for a matmul (anything but a tensor passes):
    when autocast is on for their device type, float32/float16/bfloat16 tensors go to its dtype
    (float64 stays).
    The fused ops compute in one dtype, so under autocast a public function passes its
    activations and weights in the autocast dtype; statistics (LayerNorm moments, softmax,
    channel norms) stay float32 inside the kernels. ``torch.library.register_autocast`` does not
    serve: it casts to one dtype fixed at registration, not the region's bf16 or fp16."""
    first = next((t for t in tensors if isinstance(t, torch.Tensor)), None)
    device_type = first.device.type if first is not None else "meta"
    # CPU and CUDA always have autocast; asking torch.amp.is_autocast_available for them would
    # break a Dynamo fullgraph trace on torch releases that cannot trace that builtin
    if device_type not in ("cpu", "cuda") and not torch.amp.is_autocast_available(device_type):
        return tensors
    if not torch.is_autocast_enabled(device_type):
        return tensors
    dtype = torch.get_autocast_dtype(device_type)
    return tuple(t.to(dtype) if isinstance(t, torch.Tensor) and t.dtype in AUTOCAST_DTYPES else t
                 for t in tensors)


def check_tensor(name, t):
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if t.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{name} must be float32/float64/bfloat16/float16, got {t.dtype}")


def check_same(ref_name, ref, name, t):
    if t.device != ref.device:
        raise ValueError(f"{name} is on {t.device} but {ref_name} is on {ref.device}")
    if t.dtype != ref.dtype:
        raise TypeError(f"{name} has dtype {t.dtype} but {ref_name} has {ref.dtype}")


def check_window(window):
    if not isinstance(window, int) or window < 1:
        raise ValueError(f"window must be a positive int, got {window!r}")


def check_map(name, x, window, max_dim=MAX_HEAD_DIM):
    """x must be a (B, H, W, d) float map with H, W multiples of window and d <= max_dim."""
    check_tensor(name, x)
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
    check_window(window)
    check_map("q", q, window)
    for name, t in (("k", k), ("v", v)):
        check_map(name, t, window)
        check_same("q", q, name, t)
        if t.shape != q.shape:
            raise ValueError(f"{name} has shape {tuple(t.shape)} but q has {tuple(q.shape)}")
    return check_bias_and_scale("q", q, bias, window, scale)


def check_bias_and_scale(name, x, bias, window, scale):
    """bias must be None or a (w², w²) tensor like ``x``; returns the scale (default d**-0.5)."""
    if bias is not None:
        check_tensor("bias", bias)
        check_same(name, x, "bias", bias)
        n = window * window
        if tuple(bias.shape) != (n, n):
            raise ValueError(f"bias must be ({n}, {n}) for window={window}, got {tuple(bias.shape)}")
    if scale is None:
        # d ** -0.5 in double precision: under torch.jit.trace x.shape[-1] is a 0-dim int64
        # tensor, whose ** -0.5 would be rounded to float32 and baked into the trace
        scale = float(x.shape[-1]) ** -0.5
    return float(scale)


def num_windows(x, window):
    b, h, w, _ = x.shape
    return b * (h // window) * (w // window)


def check_shared_window_attention(attn, v, mode, window):
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    check_window(window)
    check_map("v", v, window)
    check_tensor("attn", attn)
    check_same("v", v, "attn", attn)
    n = window * window
    expected = (num_windows(v, window), n, n)
    if tuple(attn.shape) != expected:
        raise ValueError(f"attn must be {expected} (windows, w*w, w*w) for v of shape "
                         f"{tuple(v.shape)}, got {tuple(attn.shape)}")


def check_channel_attention(q, k, v, temperature, mode, window):
    if mode not in CHANNEL_MODES:
        raise ValueError(f"mode must be one of {CHANNEL_MODES}, got {mode!r}")
    check_window(window)
    check_map("q", q, window, max_dim=None)
    for name, t in (("k", k), ("v", v)):
        check_map(name, t, window, max_dim=None)
        check_same("q", q, name, t)
        if t.shape != q.shape:
            raise ValueError(f"{name} has shape {tuple(t.shape)} but q has {tuple(q.shape)}")
    check_tensor("temperature", temperature)
    check_same("q", q, "temperature", temperature)
    if temperature.numel() != 1:
        raise ValueError(f"temperature must have one element, got shape {tuple(temperature.shape)}")
