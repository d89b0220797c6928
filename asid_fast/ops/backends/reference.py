"""The reference backend: the plain-PyTorch ops that the reference model itself runs."""
from ...reference import functional as RF


def available(device) -> bool:
    return True


def why_unavailable() -> str:
    return ""


def window_attention(q, k, v, bias, mode, window, scale):
    return RF.window_attention(q, k, v, bias, mode=mode, window=window, scale=scale)


def shared_window_attention(attn, v, mode, window):
    return RF.shared_window_attention(attn, v, mode=mode, window=window)


def channel_attention(q, k, v, temperature, mode, window):
    return RF.channel_attention(q, k, v, temperature, mode=mode, window=window)
