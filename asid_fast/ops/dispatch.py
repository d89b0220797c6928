"""Backend selection: ``backend="auto"`` picks the fastest available path for the tensors'
device; a named backend is used or refused with a clear error."""
from __future__ import annotations

import importlib
import warnings

import torch

BACKENDS = ("auto", "reference", "cpu", "cuda", "triton")
# backend name -> module in asid_fast.ops.backends
_MODULES = {"reference": "reference", "cpu": "ext", "cuda": "ext", "triton": "triton"}
# preference order of "auto" per device type. On CUDA the compiled kernels come first: on an H200
# (bench/results/20261126T062955Z_h200) they beat the Triton kernels by 2.2x (forward) and 2.0x
# (forward+backward) in float32, 1.6x in bfloat16 forward+backward (geometric means over ASID's
# attention shapes), and the fused layer norm by 2.0x / 2.5x in bfloat16; Triton wins only
# bfloat16 forward (1.35x). The model-level fused ops (_fused_dispatch.py) follow the same order,
# except the families listed in _fused_dispatch._AUTO_FOR_FAMILY.
_AUTO = {"cpu": ("cpu", "reference"), "cuda": ("cuda", "triton", "reference")}
# dtypes of the compiled CPU kernels; "auto" runs others (bf16/fp16 on CPU) on the reference
CPU_DTYPES = (torch.float32, torch.float64)
_warned: set[str] = set()
_loaded: dict = {}


def _module(name):
    # A plain dict lookup once loaded: importlib calls would break torch.compile graphs.
    module = _loaded.get(name)
    if module is None:
        module = _loaded[name] = importlib.import_module(f"{__package__}.backends.{_MODULES[name]}")
    return module


def _usable(name, device: torch.device) -> bool:
    if name in ("cpu", "cuda") and device.type != name:
        return False
    return _module(name).available(device)


def auto_order(device_type: str, dtype: torch.dtype) -> tuple[str, ...]:
    """The backends "auto" tries on ``device_type`` for ``dtype``, in order of preference."""
    return tuple(name for name in _AUTO.get(device_type, ("reference",))
                 if name != "cpu" or dtype in CPU_DTYPES)


def resolve(backend: str, device: torch.device, dtype: torch.dtype):
    """Return the backend module to run on ``device`` for ``dtype`` (validating ``backend``)."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if backend == "auto":
        for name in auto_order(device.type, dtype):
            if _usable(name, device):
                return _module(name)
            if name != "reference" and name not in _warned:
                _warned.add(name)
                reason = _module(name).why_unavailable() or f"not usable on {device.type}"
                warnings.warn(f"asid_fast: backend {name!r} unavailable ({reason}); "
                              "falling back to the next backend", RuntimeWarning, stacklevel=3)
        return _module("reference")
    if not _usable(backend, device):
        reason = _module(backend).why_unavailable() or f"it does not run on {device.type} tensors"
        raise RuntimeError(f"asid_fast: backend {backend!r} cannot run on {device}: {reason}")
    return _module(backend)


def available_backends(device) -> list[str]:
    device = torch.device(device)
    return [b for b in BACKENDS[1:] if _usable(b, device)]
