"""C++/CUDA extension backend (``asid_fast._C``): kernels registered per dispatch key in the
``asid_fast`` torch.library namespace (ops without prefix, schemas in ``..registration``); this
module adds their fake kernels, autograd and FLOP formulas.

Build: ``python setup.py build_ext --inplace`` (CPU kernels always; CUDA kernels when torch has CUDA
and nvcc is found). ``ASID_FAST_NO_EXT=1`` at build time skips the extension; then this backend
reports itself unavailable and ``backend="auto"`` falls back (with one warning).
"""
from __future__ import annotations

import torch

from ..registration import NAMESPACE, register_backend_ops

try:
    from ... import _C
except ImportError as exc:  # not built, or built for another torch
    _C = None
    _WHY = f"the compiled extension asid_fast._C could not be imported ({exc})"
else:
    _WHY = ""


def available(device) -> bool:
    device = torch.device(device)
    if _C is None:
        return False
    if device.type == "cuda":
        return bool(_C.built_with_cuda) and torch.cuda.is_available()
    return device.type == "cpu"


def why_unavailable() -> str:
    if _C is None:
        return _WHY
    if not _C.built_with_cuda:
        return "asid_fast._C was built without CUDA kernels"
    return "" if torch.cuda.is_available() else "no CUDA device"


# dtypes of the compiled kernels per device type
DTYPES = {"cpu": (torch.float32, torch.float64),
          "cuda": (torch.float32, torch.float16, torch.bfloat16)}


def _ops(x):
    supported = DTYPES.get(x.device.type, ())
    if x.dtype not in supported:
        names = ", ".join(str(d).replace("torch.", "") for d in supported)
        raise TypeError(f"asid_fast: the {x.device.type} kernels of asid_fast._C take {names}; got "
                        f"{x.dtype} (use backend='reference')")
    return getattr(torch.ops, NAMESPACE)


def window_attention(q, k, v, bias, mode, window, scale):
    return _ops(q).window_attention_fwd(q, k, v, bias, mode, window, scale)


def shared_window_attention(attn, v, mode, window):
    return _ops(v).shared_window_attention_fwd(attn, v, mode, window)


def channel_attention(q, k, v, temperature, mode, window):
    return _ops(q).channel_attention_fwd(q, k, v, temperature, mode, window)[0]


# ---- fake kernels (shapes/dtypes of the C++ outputs; every output is a fresh contiguous tensor) --

def _groups(x, window, channel_mode=None):
    b, h, w, _ = x.shape
    if channel_mode == "cell":
        return b * window * window
    return b * (h // window) * (w // window)


def _stats_dtype(dtype):
    """Dtype of channel attention's saved attn, rq, rk: float32 for half-precision maps."""
    return torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype


def _register_fakes():
    def fake(name):
        return torch.library.register_fake(f"{NAMESPACE}::{name}")

    @fake("window_attention_fwd")
    def _(q, k, v, bias, mode, window, scale):
        n = window * window
        return q.new_empty(q.shape), q.new_empty((_groups(q, window), n, n))

    @fake("window_attention_bwd")
    def _(grad_out, grad_attn, q, k, v, attn, bias, mode, window, scale):
        n = window * window
        return (q.new_empty(q.shape), q.new_empty(q.shape), q.new_empty(q.shape),
                q.new_empty((n, n)))

    @fake("shared_window_attention_fwd")
    def _(attn, v, mode, window):
        return v.new_empty(v.shape)

    @fake("shared_window_attention_bwd")
    def _(grad_out, attn, v, mode, window):
        return v.new_empty(attn.shape), v.new_empty(v.shape)

    @fake("channel_attention_fwd")
    def _(q, k, v, temperature, mode, window):
        g, c = _groups(q, window, mode), q.shape[-1]
        stats = _stats_dtype(q.dtype)
        return (q.new_empty(q.shape), q.new_empty((g, c, c), dtype=stats),
                q.new_empty((g, c), dtype=stats), q.new_empty((g, c), dtype=stats))

    @fake("channel_attention_bwd")
    def _(grad_out, q, k, v, temperature, attn, rq, rk, mode, window):
        return (q.new_empty(q.shape), q.new_empty(q.shape), q.new_empty(q.shape),
                temperature.new_empty(temperature.shape))


if _C is not None:
    _register_fakes()
    register_backend_ops("")
