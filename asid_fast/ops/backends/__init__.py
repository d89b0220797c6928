"""Backends of the window operators, one module each.

Every backend module exposes the same functions, called with already-validated arguments:

* ``available(device: torch.device) -> bool`` and ``why_unavailable() -> str``;
* ``window_attention(q, k, v, bias, mode, window, scale) -> (out, attn)``;
* ``shared_window_attention(attn, v, mode, window) -> out``;
* ``channel_attention(q, k, v, temperature, mode, window) -> out``.

All of them are differentiable (autograd through registered ``torch.library`` ops, or plain
PyTorch for the reference).
"""
