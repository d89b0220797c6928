"""Precision of the fused ops: the Triton dots take TF32 for float32 only when torch allows it,
and under ``torch.autocast`` the public functions run the fused kernels in the autocast dtype.

On the CPU the Triton kernels run through the interpreter, which computes every dot exactly
(TF32 is a GPU rounding): here the launchers' choice is checked, and that the kernels accept it;
the rounding itself is the GPU run's (bench/device_check.sh). Autocast is checked with
``torch.autocast("cpu", torch.float16)`` (the interpreter's bfloat16 dot is broken), which casts
the same way ``torch.autocast("cuda")`` does.
"""
from __future__ import annotations

import importlib

import pytest
import torch

from asid_fast import ops
from asid_fast.ops import _registry
from asid_fast.ops._checks import autocast_inputs
from helpers import DEVICE, TOL, assert_rel, fp32_precision
from op_cases import reference_outputs, smallest_case

TRITON = _registry.why_unavailable("triton", DEVICE.type)
needs_triton = pytest.mark.skipif(TRITON is not None, reason=str(TRITON))


def matmul_precision(value):
    """torch.backends.cuda.matmul.fp32_precision set to ``value`` inside the block."""
    return fp32_precision(torch.backends.cuda.matmul, value)


@needs_triton
def test_tf32_only_for_float32_and_only_when_allowed():
    from asid_fast.kernels.tiles import dot_precision

    with matmul_precision("none"):  # torch's default: exact
        assert dot_precision(torch.float32) == "ieee"
    with matmul_precision("ieee"):
        assert dot_precision(torch.float32) == "ieee"
    with matmul_precision("tf32"):
        assert dot_precision(torch.float32) == "tf32"
        for dtype in (torch.float64, torch.float16, torch.bfloat16):
            assert dot_precision(dtype) == "ieee"


TILE_DOT_OPS = ("attention_block_fwd", "shared_attention_block_fwd", "conv_chain_fwd")


@pytest.fixture
def every_backend_usable(monkeypatch):
    """The dispatch as on a machine where every backend runs (CUDA, Triton, the extension); the
    memoised resolutions are dropped before and after."""
    def clear():
        _registry.resolve.cache_clear()
        _registry.compiled_backend.cache_clear()
    monkeypatch.setattr(_registry, "why_unavailable", lambda backend, device_type: None)
    clear()
    yield
    clear()


@pytest.mark.parametrize("name", TILE_DOT_OPS)
def test_auto_takes_the_tile_kernels_on_cuda_only_where_products_use_tensor_cores(
        every_backend_usable, name):
    """The Triton block kernels compute in large tl.dot tiles, which in IEEE float32 run slower
    than the blocks' composition on CUDA (bench/results/20261204T101733Z_h200): "auto"
    takes them on CUDA for half types and for float32 with TF32 allowed, else runs the
    composition (whose window attention is the CUDA kernel). The choice follows the precision
    set at call time (the memo is keyed by it)."""
    size = (64, 48)
    with matmul_precision("ieee"):
        assert _registry.compiled_backend(name, "auto", "cuda", torch.float32, size) is None
        assert _registry.resolve(name, "auto", "cuda", torch.float64, size) == "reference"
        for dtype in (torch.float16, torch.bfloat16):
            assert _registry.resolve(name, "auto", "cuda", dtype, size) == "triton"
        assert _registry.resolve(name, "triton", "cuda", torch.float32, size) == "triton"
    with matmul_precision("tf32"):
        assert _registry.compiled_backend(name, "auto", "cuda", torch.float32, size) == "triton"
        assert _registry.resolve(name, "auto", "cpu", torch.float32, size) == "cpu"
    with matmul_precision("ieee"):
        assert _registry.resolve(name, "auto", "cuda", torch.float32, size) == "reference"


def test_channel_attention_leaves_triton_out_in_ieee_float32():
    """Channel attention's Triton kernel, first on CUDA for a 720p input's long cell groups, is
    slower than the CUDA kernel in IEEE float32 (its tl.dot without tensor cores;
    bench/results/20261204T165354Z_h200): "auto" takes it for those groups in half types and
    with TF32 allowed only."""
    q = torch.empty(1, 184, 320, 48, device="meta")
    size = _registry.OPS["channel_attention_fwd"].size(q, q, q, torch.empty(1), "cell", 8)

    def order(dtype):
        return _registry.auto_order("channel_attention_fwd", "cuda", dtype, size)

    with matmul_precision("ieee"):
        assert order(torch.float32) == ("cuda", "reference")
        assert order(torch.bfloat16) == ("triton", "cuda", "reference")
    with matmul_precision("tf32"):
        assert order(torch.float32) == ("triton", "cuda", "reference")


def test_summary_names_the_backend_of_every_op_that_differs(every_backend_usable):
    """On CUDA in bfloat16 the attention blocks and chains run on Triton, the depthwise
    convolution on cuDNN, channel attention on a backend chosen by size, the rest on the CUDA
    kernels; in IEEE float32 the blocks and chains are compositions of the other ops (not
    listed), and channel attention runs on the CUDA kernels at every size (its Triton kernel is a
    tensor-core backend); with TF32 allowed, float32 resolves as bfloat16 does. A named backend
    runs every op it implements."""
    with matmul_precision("ieee"):
        assert _registry.summary("auto", "cuda", torch.bfloat16) == (
            "the CUDA kernels; attention_block on triton, channel_attention by size, "
            "conv_chain on triton, depthwise_conv3x3 on reference")
        assert _registry.summary("auto", "cuda", torch.float32) == (
            "the CUDA kernels; depthwise_conv3x3 on reference")
        assert _registry.summary("cuda", "cuda", torch.float32) == "the CUDA kernels"
    with matmul_precision("tf32"):
        assert _registry.summary("auto", "cuda", torch.float32) == (
            "the CUDA kernels; attention_block on triton, channel_attention by size, "
            "conv_chain on triton, depthwise_conv3x3 on reference")


DOT_FAMILIES = ("window_attention", "channel_attention", "attention_block", "conv_chain")


@needs_triton
@pytest.mark.parametrize("allowed", [False, True])
def test_launchers_pass_the_allowed_precision_to_the_kernels(monkeypatch, allowed):
    """Every op family whose kernels use tl.dot asks for the precision at launch; with TF32
    allowed its float32 kernels get "tf32" (and still match the reference: the interpreter
    multiplies exactly), float64 kernels "ieee"."""
    chosen = []
    for family in DOT_FAMILIES:
        module = importlib.import_module(f"asid_fast.kernels.{family}")
        original = module.dot_precision
        monkeypatch.setattr(module, "dot_precision",
                            lambda dtype, f=original, m=family: chosen.append((m, dtype, f(dtype)))
                            or chosen[-1][2])
    with matmul_precision("tf32" if allowed else "ieee"):
        for name in ("window_attention_fwd", "channel_attention_fwd", "attention_block_fwd",
                     "conv_chain_fwd"):
            for dtype in (torch.float32, torch.float64):
                args = smallest_case(name).make(dtype, DEVICE)
                got = _registry.library_op(name, "triton")(*args)
                assert_rel(got[0], reference_outputs(name, args)[0], TOL[dtype], name)
    assert {m for m, _, _ in chosen} == set(DOT_FAMILIES)
    for _, dtype, precision in chosen:
        assert precision == ("tf32" if allowed and dtype == torch.float32 else "ieee")


# ---- autocast ---------------------------------------------------------------------------------

def test_autocast_inputs_casts_like_autocast():
    x, w = torch.randn(2, 3), torch.randn(3)
    d = torch.randn(3, dtype=torch.float64)
    assert autocast_inputs(x, None, w, 1.5) == (x, None, w, 1.5)  # autocast off: as given
    with torch.autocast("cpu", dtype=torch.float16):
        cx, none, cw, cd, number = autocast_inputs(x, None, w, d, 1.5)
    assert cx.dtype == cw.dtype == torch.float16 and none is None and number == 1.5
    assert cd is d  # float64 is not autocast's to cast


def test_autocast_inputs_stays_traceable_on_cpu_and_cuda(monkeypatch):
    """Dynamo in torch 2.11 cannot trace ``torch.amp.is_autocast_available`` (a fullgraph
    compile of the fused model on an H200 broke there), so for CPU and CUDA tensors, whose
    device types always have autocast, the check must not call it."""
    def untraceable(device_type):
        raise AssertionError(f"is_autocast_available({device_type!r}) called")
    monkeypatch.setattr(torch.amp, "is_autocast_available", untraceable)
    x = torch.randn(2, 3)
    assert autocast_inputs(x) == (x,)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert autocast_inputs(x)[0].dtype == torch.bfloat16


def _autocast_cases():
    """Each public op on mixed-dtype inputs (float32 maps, some float16 weights), as a model
    under autocast hands them over: (name, the op called with a backend, its inputs)."""
    g = torch.Generator().manual_seed(0)

    def r(*shape, dtype=torch.float32, scale=1.0):
        return (torch.randn(*shape, generator=g) * scale).to(DEVICE, dtype)
    d, n, half = 12, 64, torch.float16
    x, qkv = r(2, 16, 24, d), r(2, 16, 24, 3 * d)
    norm_w, norm_b = r(d, dtype=half), r(d)
    w_in, w_out = r(3 * d, d, dtype=half, scale=d ** -0.5), r(d, d, scale=d ** -0.5)

    def attention_block(b, x, nw, nb, wq, bias, wo):
        return ops.attention_block(x, (nw, nb, 1e-5), wq, bias, wo, mode="meso", backend=b)[0]

    def shared_attention_block(b, x, nw, nb, wv, attn, wo):
        return ops.shared_attention_block(x, (nw, nb, 1e-5), wv, attn, wo, mode="global",
                                          backend=b)
    return [
        ("window_attention", lambda b, qkv, bias: ops.window_attention(
            *qkv.split(d, -1), bias, mode="global", backend=b)[0], [qkv, r(n, n, dtype=half)]),
        ("channel_attention", lambda b, qkv, t: ops.channel_attention(
            *qkv.split(d, -1), t, mode="window", backend=b), [qkv, r(1, 1, 1)]),
        ("layer_norm", lambda b, x, w, bias: ops.layer_norm(x, w, bias, 1e-6, backend=b),
         [x, norm_w, norm_b]),
        ("depthwise_conv3x3", lambda b, x, w: ops.depthwise_conv3x3(
            x, w, epilogue="gate", backend=b), [x, r(d, 1, 3, 3, dtype=half)]),
        ("conv_chain", lambda b, x, nw, nb, wi, wd, wo: ops.conv_chain(
            x, wi, wd, norm=(nw, nb, 1e-6), epilogue="gate", w_out=wo, backend=b),
         [x, norm_w, norm_b, r(2 * d, d, dtype=half, scale=d ** -0.5), r(2 * d, 1, 3, 3), w_out]),
        ("attention_block", attention_block, [x, norm_w, norm_b, w_in, r(n, n), w_out]),
        ("shared_attention_block", shared_attention_block,
         [x, norm_w, norm_b, w_in[:d], r(12, n, n).softmax(-1), w_out]),
    ]


@needs_triton
@pytest.mark.parametrize("name,fn,inputs", _autocast_cases(),
                         ids=[c[0] for c in _autocast_cases()])
def test_public_ops_run_the_triton_kernels_in_the_autocast_dtype(name, fn, inputs):
    """Under autocast, mixed float32/float16 inputs run the op's Triton kernel in float16
    (not an error, not the reference), within float16's tolerance of the float64 reference on
    the same float16-rounded values."""
    with torch.autocast(DEVICE.type, dtype=torch.float16), torch.no_grad():
        with torch.autograd.profiler.profile() as prof:
            got = fn("triton", *inputs)
    kernels = {e.name for e in prof.function_events if e.name.startswith("asid_fast::triton_")}
    assert f"asid_fast::triton_{name}_fwd" in kernels, kernels
    assert got.dtype == torch.float16
    want = fn("reference", *[t.to(torch.float16).double() for t in inputs])
    assert_rel(got, want, TOL[torch.float16], name)


def test_training_step_under_autocast_reaches_every_parameter():
    """The fused model's training path under bf16 autocast (on the CPU its ops run as the
    reference, the C++ kernels taking float32/float64 only; on CUDA the device script's torchrun
    smoke run trains with --amp bf16): a bfloat16 output, and every parameter and the input get
    a finite float32 gradient pointing where the float32 one points (cosine >= 0.98; measured
    >= 0.994. Elementwise, bf16 rounding through ~60 layers moves gradients by 4% (median))."""
    from test_model_parity import fused_twin, randomized_reference

    fused = fused_twin(randomized_reference(2, "asid", torch.float32), "auto").train()
    x = torch.rand(2, 3, 13, 21)
    cotangent = torch.randn(2, 3, 26, 42)

    def gradients(autocast):
        fused.zero_grad()
        leaf = x.clone().requires_grad_()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            out = fused(leaf)
        (out.float() * cotangent).sum().backward()
        return out.dtype, {"input": leaf.grad, **{n: p.grad for n, p in fused.named_parameters()}}
    _, want = gradients(False)
    dtype, got = gradients(True)
    assert dtype == torch.bfloat16
    for name, g in want.items():
        assert got[name].dtype == torch.float32 and torch.isfinite(got[name]).all(), name
        cosine = torch.nn.functional.cosine_similarity(got[name].flatten(), g.flatten(), dim=0)
        assert cosine >= 0.98, f"{name}: cosine {cosine:.3f}"
