"""Triton backend: the fused kernels of ``asid_fast.kernels`` through the operators
``asid_fast::triton_*`` (defined in ``asid_fast.kernels.ops``).

Runs on CUDA tensors, and on CPU tensors through the Triton interpreter when TRITON_INTERPRET=1
was set before triton was first imported (tests). A window must fit one tile
(w*w <= MAX_TOKENS) and channel attention at most MAX_CHANNELS channels.
"""
from __future__ import annotations

import importlib
import importlib.util
import pathlib
import sys

import torch

MAX_TOKENS = 128
MAX_CHANNELS = 128


def _load_ops():
    """(asid_fast.kernels.ops or None, why not). In a source checkout, where ``kernels/`` sits
    beside ``asid_fast/`` instead of being installed as ``asid_fast.kernels``, the folder is
    loaded under that name."""
    try:
        import triton  # noqa: F401
    except ImportError as err:
        return None, f"triton is not importable ({err})"
    try:
        importlib.import_module("asid_fast.kernels")
    except ModuleNotFoundError as err:
        if err.name != "asid_fast.kernels":
            raise
        folder = pathlib.Path(__file__).resolve().parents[3] / "kernels"
        if not (folder / "__init__.py").is_file():
            return None, f"asid_fast.kernels is not installed and {folder} does not exist"
        spec = importlib.util.spec_from_file_location(
            "asid_fast.kernels", folder / "__init__.py", submodule_search_locations=[str(folder)])
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
    return importlib.import_module("asid_fast.kernels.ops"), ""


_OPS, _IMPORT_PROBLEM = _load_ops()


def available(device) -> bool:
    if _OPS is None:
        return False
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_available()
    return device.type == "cpu" and _OPS.interpreted()


def why_unavailable() -> str:
    if _OPS is None:
        return _IMPORT_PROBLEM
    reasons = [] if torch.cuda.is_available() else ["no CUDA device"]
    if not _OPS.interpreted():
        reasons.append("CPU tensors need the Triton interpreter (TRITON_INTERPRET=1 set before "
                       "triton is first imported)")
    return "; ".join(reasons)


def _check_window_tile(window):
    if window * window > MAX_TOKENS:
        raise ValueError(f"the Triton kernels hold one window in a tile: window*window must be "
                         f"<= {MAX_TOKENS}, got window={window}")


def window_attention(q, k, v, bias, mode, window, scale):
    _check_window_tile(window)
    return torch.ops.asid_fast.triton_window_attention_fwd(q, k, v, bias, mode, window, scale)


def shared_window_attention(attn, v, mode, window):
    _check_window_tile(window)
    return torch.ops.asid_fast.triton_shared_window_attention_fwd(attn, v, mode, window)


def channel_attention(q, k, v, temperature, mode, window):
    if q.shape[-1] > MAX_CHANNELS:
        raise ValueError(f"the Triton channel attention holds the C x C matrix in one tile: C must "
                         f"be <= {MAX_CHANNELS}, got {q.shape[-1]}")
    out, _, _, _ = torch.ops.asid_fast.triton_channel_attention_fwd(q, k, v, temperature, mode,
                                                                    window)
    return out
