"""The kernels as ``torch.library`` operators ``asid_fast::triton_*`` (schemas: see
:mod:`asid_fast.ops.registration`), with autograd and FLOP formulas from
``register_backend_ops("triton_")``.

Two launch paths, kept apart by design:

* CUDA tensors: every op is a ``torch.library.triton_op`` whose body launches through
  ``wrap_triton``, so torch.compile traces into the kernels without graph breaks;
* CPU tensors, only when the kernels were built by the Triton interpreter (TRITON_INTERPRET=1 set
  before triton is first imported; the test path): a CPU kernel registered on the same op
  launches the interpreted kernels directly — ``wrap_triton`` under the interpreter in eager mode
  is broken in PyTorch releases before the fix of pytorch#152868.

Fake (meta) implementations are shape-only: the launchers' own output allocators.
"""
from typing import Optional

import triton.language as tl
from torch import Tensor
from torch.library import triton_op, wrap_triton
from triton.runtime.interpreter import InterpretedFunction

from ..ops.registration import NAMESPACE, register_backend_ops
from . import channel_attention as CA
from . import window_attention as WA
from .channel_attention import channel_attention_bwd_kernel, channel_attention_fwd_kernel
from .tiles import fresh_map
from .window_attention import window_attention_bwd_kernel, window_attention_fwd_kernel

PREFIX = "triton_"


def interpreted() -> bool:
    """Whether the kernels, and the triton.language functions they call (triton's own imports
    decide those), were built by the Triton interpreter: they then run on CPU tensors."""
    return all(isinstance(f, InterpretedFunction) for f in (window_attention_fwd_kernel, tl.sum))


@triton_op(f"{NAMESPACE}::{PREFIX}window_attention_fwd", mutates_args=())
def window_attention_fwd(q: Tensor, k: Tensor, v: Tensor, bias: Optional[Tensor], mode: str,
                         window: int, scale: float) -> tuple[Tensor, Tensor]:
    return WA.window_attention_fwd(wrap_triton(window_attention_fwd_kernel), q, k, v, bias, mode,
                                   window, scale)


@triton_op(f"{NAMESPACE}::{PREFIX}window_attention_bwd", mutates_args=())
def window_attention_bwd(grad_out: Tensor, grad_attn: Optional[Tensor], q: Tensor, k: Tensor,
                         v: Tensor, attn: Tensor, bias: Optional[Tensor], mode: str, window: int,
                         scale: float) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    return WA.window_attention_bwd(wrap_triton(window_attention_bwd_kernel), grad_out, grad_attn,
                                   q, k, v, attn, bias, mode, window, scale)


@triton_op(f"{NAMESPACE}::{PREFIX}shared_window_attention_fwd", mutates_args=())
def shared_window_attention_fwd(attn: Tensor, v: Tensor, mode: str, window: int) -> Tensor:
    return WA.shared_window_attention_fwd(wrap_triton(window_attention_fwd_kernel), attn, v, mode,
                                          window)


@triton_op(f"{NAMESPACE}::{PREFIX}shared_window_attention_bwd", mutates_args=())
def shared_window_attention_bwd(grad_out: Tensor, attn: Tensor, v: Tensor, mode: str,
                                window: int) -> tuple[Tensor, Tensor]:
    return WA.shared_window_attention_bwd(wrap_triton(window_attention_bwd_kernel), grad_out,
                                          attn, v, mode, window)


@triton_op(f"{NAMESPACE}::{PREFIX}channel_attention_fwd", mutates_args=())
def channel_attention_fwd(q: Tensor, k: Tensor, v: Tensor, temperature: Tensor, mode: str,
                          window: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    return CA.channel_attention_fwd(wrap_triton(channel_attention_fwd_kernel), q, k, v,
                                    temperature, mode, window)


@triton_op(f"{NAMESPACE}::{PREFIX}channel_attention_bwd", mutates_args=())
def channel_attention_bwd(grad_out: Tensor, q: Tensor, k: Tensor, v: Tensor, temperature: Tensor,
                          attn: Tensor, rq: Tensor, rk: Tensor, mode: str,
                          window: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    return CA.channel_attention_bwd(wrap_triton(channel_attention_bwd_kernel), grad_out, q, k, v,
                                    temperature, attn, rq, rk, mode, window)


def _interpreter_launch(launcher, kernel):
    """CPU implementation: run ``launcher`` on the interpreted (unwrapped) kernel."""
    def run(*args):
        if not interpreted():
            raise RuntimeError(
                "asid_fast Triton ops run on CPU tensors only through the Triton interpreter: set "
                "TRITON_INTERPRET=1 before triton is first imported")
        return launcher(kernel, *args)
    return run


_REGISTRY = (  # op, launcher, kernel, shape-only fake
    (window_attention_fwd, WA.window_attention_fwd, window_attention_fwd_kernel,
     lambda q, k, v, bias, mode, window, scale: WA.window_attention_fwd_outputs(q, window)),
    (window_attention_bwd, WA.window_attention_bwd, window_attention_bwd_kernel,
     lambda grad_out, grad_attn, q, k, v, attn, bias, mode, window, scale:
     WA.window_attention_bwd_outputs(q, window)),
    (shared_window_attention_fwd, WA.shared_window_attention_fwd, window_attention_fwd_kernel,
     lambda attn, v, mode, window: fresh_map(v)),
    (shared_window_attention_bwd, WA.shared_window_attention_bwd, window_attention_bwd_kernel,
     lambda grad_out, attn, v, mode, window: WA.shared_window_attention_bwd_outputs(attn, v)),
    (channel_attention_fwd, CA.channel_attention_fwd, channel_attention_fwd_kernel,
     lambda q, k, v, temperature, mode, window: CA.channel_attention_fwd_outputs(q, mode, window)),
    (channel_attention_bwd, CA.channel_attention_bwd, channel_attention_bwd_kernel,
     lambda grad_out, q, k, v, temperature, attn, rq, rk, mode, window:
     CA.channel_attention_bwd_outputs(q, temperature)),
)
for _op, _launcher, _kernel, _fake in _REGISTRY:
    _op.register_kernel("cpu", _interpreter_launch(_launcher, _kernel))
    _op.register_fake(_fake)
register_backend_ops(PREFIX)
