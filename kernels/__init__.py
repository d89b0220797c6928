"""Triton kernels of asid_fast (shipped as ``asid_fast.kernels``): fused window attention,
shared-attention apply and channel attention, each with a launcher that takes the kernel to run
(bare, or wrapped by ``torch.library.wrap_triton``). ``.ops`` registers them as operators
(imported by ``asid_fast.ops.backends.triton``)."""
from .channel_attention import (channel_attention_bwd, channel_attention_bwd_kernel,
                                channel_attention_bwd_outputs, channel_attention_fwd,
                                channel_attention_fwd_kernel, channel_attention_fwd_outputs)
from .window_attention import (shared_window_attention_bwd, shared_window_attention_bwd_outputs,
                               shared_window_attention_fwd, window_attention_bwd,
                               window_attention_bwd_kernel, window_attention_bwd_outputs,
                               window_attention_fwd, window_attention_fwd_kernel,
                               window_attention_fwd_outputs)

__all__ = [
    "channel_attention_bwd", "channel_attention_bwd_kernel", "channel_attention_bwd_outputs",
    "channel_attention_fwd", "channel_attention_fwd_kernel", "channel_attention_fwd_outputs",
    "shared_window_attention_bwd", "shared_window_attention_bwd_outputs",
    "shared_window_attention_fwd", "window_attention_bwd", "window_attention_bwd_kernel",
    "window_attention_bwd_outputs", "window_attention_fwd", "window_attention_fwd_kernel",
    "window_attention_fwd_outputs",
]
