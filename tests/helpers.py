"""What the op and model tests share: the device they run on, tolerances, comparisons,
outputs-with-gradients of a function, IEEE float32 convolutions for GPU comparisons, and torch's
float32 precision settings set for a block.

Tolerances are relative: max |actual - expected| / max |expected| per tensor, against a float64
reference computed on the same (rounded) inputs:
* float64 1e-10 (measured ~1e-15: summation order only);
* float32 1e-5 (measured <= 1e-6: float32 rounding of d-, n- and C-long sums, and the CPU GELU's
  float32 erf, |error| < 4e-7);
* float16 5e-3 and bfloat16 3e-2: a few units of the format's epsilon (2^-11, 2^-8), since the
  kernels round outputs, the saved attention matrix and products' operands to the map dtype as
  the reference does.
"""
from __future__ import annotations

from contextlib import contextmanager

import pytest
import torch

from asid_fast.ops import _registry

DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")
TOL = {torch.float64: 1e-10, torch.float32: 1e-5, torch.float16: 5e-3, torch.bfloat16: 3e-2}


def assert_rel(actual, expected, tol, name=""):
    """max |actual - expected| <= tol * max |expected| (both as float64)."""
    assert actual.shape == expected.shape, f"{name}: shape {actual.shape} != {expected.shape}"
    err = (actual.double() - expected.double()).abs().max().item() if actual.numel() else 0.0
    scale = expected.double().abs().max().item() if expected.numel() else 0.0
    assert err <= tol * max(scale, 1e-30), f"{name}: max abs error {err:.3e} > {tol:g} * {scale:.3e}"


def as_tuple(out):
    """An op's outputs as a tuple (a Tensor[] return, such as linear_bwd's, is its outputs)."""
    return tuple(out) if isinstance(out, (tuple, list)) else (out,)


def outputs_and_grads(fn, inputs, seed=7):
    """fn(*inputs)'s outputs, then the gradients of sum(output * fixed random cotangent) over the
    floating-point outputs with respect to every tensor input that requires a gradient."""
    outs = as_tuple(fn(*inputs))
    leaves = [x for x in inputs if isinstance(x, torch.Tensor) and x.requires_grad]
    g = torch.Generator().manual_seed(seed)
    cots = [torch.randn(o.shape, generator=g, dtype=torch.float64).to(o) for o in outs]
    grads = torch.autograd.grad(outs, leaves, cots, allow_unused=True) if leaves else ()
    return [o.detach() for o in outs] + [gr for gr in grads]


def backend_param(backend, op_name="window_attention_fwd", device=DEVICE, dtype=torch.float32):
    """pytest.param(backend), skipped with the registry's reason when it cannot run ``op_name``."""
    reason = _registry.why_not(op_name, backend, device.type, dtype)
    return pytest.param(backend, marks=pytest.mark.skipif(reason is not None, reason=str(reason)))


def compiled_backends(device=DEVICE):
    """The compiled backends of ``device``'s type: ("cpu", "triton") or ("cuda", "triton")."""
    return ("cuda" if device.type == "cuda" else "cpu", "triton")


@contextmanager
def cudnn_without_tf32():
    """cuDNN's convolutions in IEEE float32 inside the block. torch allows them TF32 by default,
    which rounds inputs to 10 mantissa bits in whichever algorithm cuDNN picks, so two runs of
    the same float32 model (eager and graph capture, eager and inductor, fused and reference)
    can differ by ~3e-4 relative (measured on an H200) instead of float32 rounding."""
    previous = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32 = previous


@contextmanager
def fp32_precision(setting, value=None):
    """One of torch's float32 precision settings (``torch.backends.cuda.matmul``,
    ``torch.backends.mkldnn.matmul``, ``torch.backends.mkldnn``...) set to ``value`` inside the
    block (left as it is when None), and put back after it. Only the ``fp32_precision`` API: mixing
    it with the legacy ``allow_tf32`` makes torch raise on later reads."""
    previous = setting.fp32_precision
    if value is not None:
        setting.fp32_precision = value
    try:
        yield setting
    finally:
        setting.fp32_precision = previous
