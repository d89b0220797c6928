"""Fused ASID operators with autograd, one dispatch over the reference, C++/CUDA and Triton
backends."""
from .dispatch import BACKENDS, available_backends
from .functional import channel_attention, shared_window_attention, window_attention

__all__ = ["BACKENDS", "available_backends", "channel_attention", "shared_window_attention",
           "window_attention"]
