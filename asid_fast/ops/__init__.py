"""ASID's fused operators as PyTorch ops with autograd, fake kernels and FLOP formulas, on the
reference, C++ CPU, CUDA and Triton backends behind one dispatch (:mod:`._registry`).

Each op module declares its ops and its public function; importing this package registers every
op (schemas, fake kernels, autograd) and loads the compiled extension's kernels, so graphs saved
by torch.export or TorchScript load in a fresh process after ``import asid_fast``.
"""
from . import channel_attention as _channel_attention  # noqa: F401  (registers its ops)
from . import conv_chain as _conv_chain  # noqa: F401
from . import depthwise_conv3x3 as _depthwise_conv3x3  # noqa: F401
from . import layer_norm as _layer_norm  # noqa: F401
from . import linear as _linear  # noqa: F401
from . import window_attention as _window_attention  # noqa: F401
from ._registry import BACKENDS, available_backends, load_extension
from .channel_attention import channel_attention
from .conv_chain import conv_chain
from .depthwise_conv3x3 import depthwise_conv3x3
from .layer_norm import layer_norm
from .linear import linear
from .window_attention import shared_window_attention, window_attention

load_extension()

__all__ = ["BACKENDS", "available_backends", "channel_attention", "conv_chain",
           "depthwise_conv3x3", "layer_norm", "linear", "shared_window_attention",
           "window_attention"]
