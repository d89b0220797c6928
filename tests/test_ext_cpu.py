"""CPU kernels of the compiled extension (asid_fast._C) against the reference ops: forward and
every gradient, both window modes, d in {12, 24, 36}, batch 2, non-square maps, q/k/v as strided
views of one projection, gradient into attn, channel attention in both groupings."""
from __future__ import annotations

import pytest
import torch

from asid_fast import ops
from asid_fast.ops.backends import ext

pytestmark = pytest.mark.skipif(not ext.available("cpu"), reason=ext.why_unavailable())

# Relative tolerances (max |error| / max |reference|): float32 rounding ~1e-7 per op compounds
# over the d- and n-long sums; float64 to the project's 1e-10.
RTOL = {torch.float32: 1e-5, torch.float64: 1e-10}


def assert_close(actual, expected, dtype, what):
    scale = expected.abs().max().clamp_min(1e-30)
    err = ((actual - expected).abs().max() / scale).item()
    assert err <= RTOL[dtype], f"{what}: relative error {err:.3e} > {RTOL[dtype]:.0e}"


def window_case(b=2, h=16, w=24, d=24, window=8, dtype=torch.float32, bias=True, seed=0):
    """Leaves (x, bias) with q, k, v strided views of x: (B, H, W, 3d); fixed output grads."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(b, h, w, 3 * d, dtype=dtype, generator=g).requires_grad_()
    n = window * window
    bias_t = torch.randn(n, n, dtype=dtype, generator=g).requires_grad_() if bias else None
    windows = b * (h // window) * (w // window)
    grad_out = torch.randn(b, h, w, d, dtype=dtype, generator=g)
    grad_attn = torch.randn(windows, n, n, dtype=dtype, generator=g)
    return x, bias_t, grad_out, grad_attn


def run_window(backend, case, mode, window=8, grad_attn=True):
    x, bias, grad_out, ga = case
    q, k, v = x.split(x.shape[-1] // 3, dim=-1)
    out, attn = ops.window_attention(q, k, v, bias, mode=mode, window=window, backend=backend)
    leaves = [x] + ([bias] if bias is not None else [])
    outputs, grads = ((out, attn), (grad_out, ga)) if grad_attn else ((out,), (grad_out,))
    return [out, attn, *torch.autograd.grad(outputs, leaves, grads)]


def compare(backend_results, reference_results, dtype, names):
    for a, r, name in zip(backend_results, reference_results, names):
        assert a.shape == r.shape and a.dtype == r.dtype, name
        assert_close(a, r, dtype, name)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("d", [12, 24, 36])
@pytest.mark.parametrize("mode", ["meso", "global"])
def test_window_attention_matches_reference(mode, d, dtype):
    case = window_case(d=d, dtype=dtype)
    compare(run_window("cpu", case, mode), run_window("reference", case, mode), dtype,
            ["out", "attn", "dqkv", "dbias"])


@pytest.mark.parametrize("mode", ["meso", "global"])
def test_window_attention_without_bias_or_attn_gradient(mode):
    case = window_case(d=24, dtype=torch.float64, bias=False, seed=1)
    compare(run_window("cpu", case, mode, grad_attn=False),
            run_window("reference", case, mode, grad_attn=False), torch.float64,
            ["out", "attn", "dqkv"])


# n = 16, 9, 25: padded rows and channel tails of every width; n = 144: rows longer than the
# kernels keep in registers (8 vectors), so the softmax goes through a scratch tile.
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("window,d", [(4, 5), (3, 7), (5, 6), (12, 20)])
@pytest.mark.parametrize("mode", ["meso", "global"])
def test_window_attention_other_window_sizes(mode, window, d, dtype):
    case = window_case(b=2, h=3 * window, w=5 * window, d=d, window=window, dtype=dtype)
    compare(run_window("cpu", case, mode, window), run_window("reference", case, mode, window),
            dtype, ["out", "attn", "dqkv", "dbias"])


def test_window_attention_separate_tensors_with_different_strides():
    """q, k, v from different buffers (one channel slice of a wider map, one transposed-H/W
    view) exercise the per-map strides of the gather."""
    g = torch.Generator().manual_seed(3)
    q = torch.randn(2, 16, 24, 40, dtype=torch.float64, generator=g)[..., 3:15].requires_grad_()
    k = torch.randn(2, 24, 16, 12, dtype=torch.float64, generator=g).transpose(1, 2)
    k.requires_grad_()
    v = torch.randn(2, 16, 24, 12, dtype=torch.float64, generator=g).requires_grad_()
    grad = torch.randn(2, 16, 24, 12, dtype=torch.float64, generator=g)
    results = []
    for backend in ("cpu", "reference"):
        out, _ = ops.window_attention(q, k, v, mode="global", backend=backend)
        results.append([out, *torch.autograd.grad(out, (q, k, v), grad)])
    compare(*results, torch.float64, ["out", "dq", "dk", "dv"])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("window,d", [(8, 12), (8, 36), (3, 7)])  # n = 9: padded rows
@pytest.mark.parametrize("mode", ["meso", "global"])
def test_shared_window_attention_matches_reference(mode, window, d, dtype):
    g = torch.Generator().manual_seed(d)
    b, h, w, n = 2, 2 * window, 3 * window, window * window
    attn = torch.randn(b * 6, n, n, dtype=dtype, generator=g).softmax(-1).requires_grad_()
    x = torch.randn(b, h, w, 2 * d, dtype=dtype, generator=g).requires_grad_()
    v = x[..., d:]  # strided view
    grad = torch.randn(b, h, w, d, dtype=dtype, generator=g)
    results = []
    for backend in ("cpu", "reference"):
        out = ops.shared_window_attention(attn, v, mode=mode, window=window, backend=backend)
        results.append([out, *torch.autograd.grad(out, (attn, x), grad)])
    compare(*results, dtype, ["out", "dattn", "dv"])


@pytest.mark.parametrize("d", [12, 36])
@pytest.mark.parametrize("mode", ["meso", "global"])
def test_window_kernels_with_several_batches_per_part(mode, d):
    """768 windows: 64 parts of 12, each several batches (d = 12: forward batches of 5, backward
    of 2, shared ones of 8), so every thread moves from batch to batch and part to part (the
    next part is taken when a part's last batch starts)."""
    case = window_case(b=2, h=192, w=128, d=d, seed=6)
    compare(run_window("cpu", case, mode), run_window("reference", case, mode), torch.float32,
            ["out", "attn", "dqkv", "dbias"])
    attn = case[3].softmax(-1).requires_grad_()  # any row-stochastic (768, 64, 64) matrix
    results = []
    for backend in ("cpu", "reference"):
        out = ops.shared_window_attention(attn, case[0][..., :d], mode=mode, backend=backend)
        results.append([out, *torch.autograd.grad(out, (attn, case[0]), case[2])])
    compare(*results, torch.float32, ["out", "dattn", "dv"])


def channel_case(b=2, h=16, w=24, c=48, dtype=torch.float32, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(b, h, w, 3 * c, dtype=dtype, generator=g).requires_grad_()
    temperature = torch.full((1, 1, 1), 1.7, dtype=dtype).requires_grad_()
    grad = torch.randn(b, h, w, c, dtype=dtype, generator=g)
    return x, temperature, grad


def run_channel(backend, case, mode):
    x, temperature, grad = case
    q, k, v = x.split(x.shape[-1] // 3, dim=-1)
    out = ops.channel_attention(q, k, v, temperature, mode=mode, backend=backend)
    return [out, *torch.autograd.grad(out, (x, temperature), grad)]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("hw", [(16, 24), (32, 40)])
@pytest.mark.parametrize("mode", ["window", "cell"])
def test_channel_attention_matches_reference(mode, hw, dtype):
    case = channel_case(h=hw[0], w=hw[1], dtype=dtype)
    compare(run_channel("cpu", case, mode), run_channel("reference", case, mode), dtype,
            ["out", "dqkv", "dtemperature"])


@pytest.mark.parametrize("mode", ["window", "cell"])
def test_channel_attention_zero_rows_use_clamped_norm(mode):
    """Channel rows that are all zero in a group hit the eps clamp of the L2 normalisation, whose
    gradient differs (no projection term)."""
    x, temperature, grad = channel_case(c=5, dtype=torch.float64, seed=2)
    with torch.no_grad():
        x[0, 0:8, 0:8, 1] = 0.0  # q channel 1 of window (0, 0)
        x[:, ::8, ::8, 5 + 2] = 0.0  # k channel 2 of cell group (0, 0)
    case = (x, temperature, grad)
    compare(run_channel("cpu", case, mode), run_channel("reference", case, mode), torch.float64,
            ["out", "dqkv", "dtemperature"])


@pytest.fixture(params=["baseline", "avx2"])
def cpu_isa(request):
    if request.param == "avx2" and ext._C.set_cpu_isa("auto") != "avx2":
        pytest.skip("AVX2+FMA kernels not available on this CPU/build")
    yield ext._C.set_cpu_isa(request.param)
    ext._C.set_cpu_isa("auto")


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_every_instruction_set_matches_reference(cpu_isa, dtype):
    case = window_case(d=36, dtype=dtype, seed=4)
    compare(run_window("cpu", case, "global"), run_window("reference", case, "global"), dtype,
            ["out", "attn", "dqkv", "dbias"])
    case = channel_case(h=32, w=16, dtype=dtype, seed=4)
    compare(run_channel("cpu", case, "cell"), run_channel("reference", case, "cell"), dtype,
            ["out", "dqkv", "dtemperature"])


def test_results_do_not_depend_on_thread_count():
    """Reduced gradients are summed per part in a fixed order: bitwise equal for 1 and 2 threads."""
    case = window_case(d=12, seed=5)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = run_window("cpu", case, "meso")
        torch.set_num_threads(2)
        two = run_window("cpu", case, "meso")
    finally:
        torch.set_num_threads(threads)
    for a, b in zip(one, two):
        assert torch.equal(a, b)
