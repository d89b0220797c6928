"""What only the Triton kernels have: the interpreter set-up on the CPU, backward programs that
stride over several windows, attention sharing through the public functions, larger maps, and
torch.compile on a GPU. Parity on every op, shape and dtype: tests/test_ops_parity.py.

Without CUDA the kernels run on CPU tensors through the Triton interpreter, which needs
TRITON_INTERPRET=1 before triton is first imported (tests/conftest.py sets it).
"""
from __future__ import annotations

import importlib

import pytest
import torch

from asid_fast import ops
from asid_fast.ops import _registry
from helpers import DEVICE, TOL, assert_rel, outputs_and_grads

pytestmark = pytest.mark.skipif(
    _registry.why_unavailable("triton", DEVICE.type) is not None,
    reason=str(_registry.why_unavailable("triton", DEVICE.type)))


def test_interpreter_was_enabled_before_triton_was_imported():
    if DEVICE.type == "cuda":
        pytest.skip("real kernels on a GPU")
    assert _registry.triton_interpreted(), (
        "triton was imported before TRITON_INTERPRET=1 was set: set it in tests/conftest.py, "
        "before anything imports torch.utils.flop_counter")


def _against_reference(fn, inputs, dtype=torch.float32):
    """fn(backend) on Triton in ``dtype`` vs the reference in float64, outputs and gradients."""
    got = outputs_and_grads(fn("triton"), [x.to(DEVICE, dtype).requires_grad_() for x in inputs])
    want = outputs_and_grads(fn("reference"),
                             [x.to(DEVICE, dtype).double().requires_grad_() for x in inputs])
    for i, (g, w) in enumerate(zip(got, want)):
        assert_rel(g, w, TOL[dtype], f"output/gradient {i}")


def _window(d, mode="meso"):
    def of_backend(backend):
        def f(qkv, bias):
            q, k, v = qkv.split(d, dim=-1)
            return ops.window_attention(q, k, v, bias, mode=mode, backend=backend)
        return f
    return of_backend


def test_backward_programs_stride_over_several_windows(monkeypatch):
    """More windows than dbias partials (256 on real maps): 12 windows on 5 programs."""
    kernels = importlib.import_module("asid_fast.kernels.window_attention")
    monkeypatch.setattr(kernels, "BIAS_PARTIALS", 5)
    _against_reference(_window(12), [torch.randn(2, 16, 24, 36), torch.randn(64, 64)])


@pytest.mark.parametrize("mode", ["meso", "global"])
def test_attention_sharing_backpropagates_into_block0(mode):
    """block0 computes attn, a sharing block applies it to its own v: the sharing block's
    gradient reaches q and k through the incoming gradient of attn."""
    d = 12

    def of_backend(backend):
        def f(qkv, bias, v2):
            q, k, v = qkv.split(d, dim=-1)
            out, attn = ops.window_attention(q, k, v, bias, mode=mode, backend=backend)
            return out, ops.shared_window_attention(attn, v2, mode=mode, backend=backend)
        return f
    _against_reference(of_backend, [torch.randn(2, 16, 24, 3 * d), torch.randn(64, 64),
                                    torch.randn(2, 16, 24, d)])


@pytest.mark.slow
def test_larger_maps():
    """Window attention on 40x64 (B=2, 80 windows) and cell channel attention with window 8."""
    for mode in ("meso", "global"):
        _against_reference(_window(36, mode), [torch.randn(2, 40, 64, 108), torch.randn(64, 64)])

    def channel(backend):
        def f(qkv, temperature):
            q, k, v = qkv.split(48, dim=-1)
            return ops.channel_attention(q, k, v, temperature, mode="cell", backend=backend)
        return f
    _against_reference(channel, [torch.randn(2, 16, 24, 144), torch.full((1, 1, 1), 1.7)])


@pytest.mark.cuda
@pytest.mark.skipif(DEVICE.type != "cuda", reason="needs a CUDA device")
def test_compile_without_graph_breaks():
    """The public functions on the Triton backend under torch.compile(fullgraph=True), forward
    and backward."""
    d, c = 24, 48

    def f(qkv, bias, v2, x, temperature):
        q, k, v = qkv.split(d, dim=-1)
        out, attn = ops.window_attention(q, k, v, bias, mode="global", backend="triton")
        shared = ops.shared_window_attention(attn, v2, mode="global", backend="triton")
        xq, xk, xv = x.split(c, dim=-1)
        cam = ops.channel_attention(xq, xk, xv, temperature, mode="cell", backend="triton")
        return out, shared, cam

    inputs = [torch.randn(2, 32, 48, 3 * d), torch.randn(64, 64), torch.randn(2, 32, 48, d),
              torch.randn(2, 32, 48, 3 * c), torch.full((1, 1, 1), 1.7)]
    inputs = [x.cuda().requires_grad_() for x in inputs]
    eager = outputs_and_grads(f, inputs)
    compiled = outputs_and_grads(torch.compile(f, fullgraph=True), inputs)
    for e, g in zip(eager, compiled):
        assert_rel(g, e, 1e-6)
