"""Backend resolution for the model-level fused ops (layer norm, depthwise 3x3 conv).

Each such op family ``<family>`` (e.g. "fused_layer_norm") has three implementations:
``"reference"`` (plain PyTorch, the twin of what the reference model computes), ``"compiled"``
(``asid_fast::<family>_fwd/_bwd`` with CPU and CUDA kernels from the extension ``asid_fast._C``)
and ``"triton"`` (``asid_fast::triton_<family>_fwd/_bwd`` defined by ``asid_fast.kernels.<family>``).
``backend`` takes the names of :mod:`asid_fast.ops.dispatch`: "cpu"/"cuda" name the compiled ops
on that device type.

:func:`resolve` is evaluated once per trace under ``torch.compile`` (a constant result), and it
loads the chosen implementation and runs the family's registration hook (fake kernels, autograd)
before returning, so compiled graphs only ever see registered ops.
"""
from __future__ import annotations

import importlib
import os
from typing import Callable

import torch

from .dispatch import BACKENDS, CPU_DTYPES, auto_order

# Families whose "auto" order on a device type differs from the attention ops'. On CUDA the
# depthwise 3x3 convolution runs on cuDNN (the reference twin): on an H200
# (bench/results/20261126T062955Z_h200, bfloat16) cuDNN beat the CUDA kernel 1.1-5x and the
# Triton kernel 1.7-3x, forward and forward+backward, at every epilogue and width ASID uses.
_AUTO_FOR_FAMILY = {("cuda", "fused_dwconv3x3"): ("reference",)}
_register_hooks: dict[str, Callable[[str], None]] = {}
_registered_ops: set[str] = set()
_python_autograd: set[str] = set()


def has_cpp_autograd(name: str) -> bool:
    """Whether ``asid_fast::<name>`` has an autograd kernel from C++ (cpu/fused_autograd.cpp).
    Only the extension's ops can (the Triton ops, "triton_" prefix, are torch.library custom ops,
    which always carry torch's own Autograd kernel that wants a Python formula)."""
    return not name.startswith("triton_") and torch._C._dispatch_has_kernel_for_dispatch_key(
        f"asid_fast::{name}", "Autograd")


def register_op(name: str, fake, backward=None, setup_context=None) -> bool:
    """Register the fake kernel and, unless the op has one from C++, the autograd formula of
    ``asid_fast::<name>`` once; returns False when it was already done. Call it from the op's own
    module: torch checks that the fake kernel comes from the module the C++ schema names
    (``set_python_module``)."""
    if name in _registered_ops:
        return False
    _registered_ops.add(name)
    op = getattr(torch.ops.asid_fast, name).default
    torch.library.register_fake(op, fake, _stacklevel=2)
    if backward is not None and not has_cpp_autograd(name):
        torch.library.register_autograd(op, backward, setup_context=setup_context)
        _python_autograd.add(name)
    return True


def add_register_hook(family: str, hook: Callable[[str], None]) -> None:
    """``hook(prefix)`` registers fake kernels and autograd for ``asid_fast::<prefix><family>_*``."""
    _register_hooks[family] = hook


def compiled_op_available(name: str, device: torch.device) -> bool:
    """True when the extension runs on ``device`` and registers ``asid_fast::<name>``."""
    from .backends import ext
    return ext.available(device) and hasattr(torch.ops.asid_fast, name)


def import_kernel(family: str):
    """``asid_fast.kernels.<family>`` (the Triton backend module loads ``asid_fast.kernels`` from
    the installed package or the source checkout)."""
    from .backends import triton as triton_backend  # noqa: F401
    return importlib.import_module(f"asid_fast.kernels.{family}")


def triton_usable(device: torch.device) -> bool:
    """Triton runs CUDA tensors, or CPU tensors under the interpreter (see backends/triton.py)."""
    if device.type != "cuda" and os.environ.get("TRITON_INTERPRET") != "1":
        return False
    from .backends import triton as triton_backend
    return triton_backend.available(device)


def family_auto_order(device_type: str, family: str, dtype: torch.dtype) -> tuple[str, ...]:
    """The backends "auto" tries for ``family`` on ``device_type``, in order of preference."""
    return _AUTO_FOR_FAMILY.get((device_type, family)) or auto_order(device_type, dtype)


def _usable(name: str, device: torch.device, family: str) -> bool:
    if name == "reference":
        return True
    if name == "triton":
        return triton_usable(device)
    return device.type == name and compiled_op_available(family + "_fwd", device)


def _cached(fn):
    """Memoise a resolution by its arguments (what is built and importable does not change while
    the process runs; this takes the per-call Python cost off the eager path)."""
    cache = {}

    def wrapper(*args):
        if args not in cache:
            cache[args] = fn(*args)
        return cache[args]
    wrapper.__doc__ = fn.__doc__
    return wrapper


@torch.compiler.assume_constant_result
@_cached
def cpu_op_usable(backend: str, device_type: str, family: str, dtype: torch.dtype) -> bool:
    """Whether a CPU-only compiled op ``asid_fast::<family>_fwd`` (the streamed conv chain, the
    fused linear map) serves ``backend`` on ``device_type`` for ``dtype``; registers it when it
    does. An op without an autograd kernel (an extension built before its C++ autograd) does not
    serve."""
    if backend not in ("auto", "cpu") or device_type != "cpu" or dtype not in CPU_DTYPES:
        return False
    if not compiled_op_available(family + "_fwd", torch.device("cpu")):
        return False
    _register_hooks[family]("")
    return has_cpp_autograd(family + "_fwd") or family + "_fwd" in _python_autograd


@torch.compiler.assume_constant_result
@_cached
def resolve(backend: str, device_type: str, family: str, dtype: torch.dtype) -> str:
    """"reference", "compiled" or "triton" for ``family`` on ``device_type`` and ``dtype``; a
    named backend that cannot run there raises RuntimeError. "auto" passes over the compiled CPU
    kernels for dtypes they do not take (bf16/fp16 on CPU run the reference)."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    device = torch.device(device_type)
    names = family_auto_order(device.type, family, dtype) if backend == "auto" else (backend,)
    for name in names:
        if not _usable(name, device, family):
            continue
        if name == "reference":
            return name
        if name == "triton":
            import_kernel(family)
        _register_hooks[family]("triton_" if name == "triton" else "")
        return "triton" if name == "triton" else "compiled"
    raise RuntimeError(f"asid_fast: backend {backend!r} cannot run {family} on {device_type} "
                       "(extension not built, Triton missing, or wrong device type)")
