"""CUDA kernels of the compiled extension against the reference ops (run by the device script;
skipped without a CUDA device or without the CUDA part of asid_fast._C).

The reference runs in float32 on the same (rounded) inputs; tolerances are relative to the
largest reference value: float32 1e-5 (fp32 arithmetic in another order), float16 5e-3 and
bfloat16 3e-2 (outputs and the saved attention matrix are rounded to the map dtype)."""
from __future__ import annotations

import pytest
import torch

from asid_fast import ops
from asid_fast.ops.backends import ext
from test_ext_cpu import channel_case, run_channel, run_window, window_case

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device"),
    pytest.mark.skipif(not ext.available("cuda"), reason=ext.why_unavailable()),
]

RTOL = {torch.float32: 1e-5, torch.float16: 5e-3, torch.bfloat16: 3e-2}
DTYPES = [torch.float32, torch.float16, torch.bfloat16]


def on_cuda(case, dtype):
    """(cuda case in dtype, cuda float32 case with the same rounded values)."""
    def move(t, to):
        return None if t is None else t.detach().to("cuda", dtype).to(to).requires_grad_(
            t.requires_grad)
    return tuple(move(t, dtype) for t in case), tuple(move(t, torch.float32) for t in case)


def compare(results, reference, dtype, names):
    for a, r, name in zip(results, reference, names):
        assert a.shape == r.shape, name
        err = ((a.float() - r).abs().max() / r.abs().max().clamp_min(1e-30)).item()
        assert err <= RTOL[dtype], f"{name} ({dtype}): relative error {err:.3e} > {RTOL[dtype]}"


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("d", [12, 24, 36])
@pytest.mark.parametrize("mode", ["meso", "global"])
def test_window_attention_cuda(mode, d, dtype):
    case, ref_case = on_cuda(window_case(d=d), dtype)
    compare(run_window("cuda", case, mode), run_window("reference", ref_case, mode), dtype,
            ["out", "attn", "dqkv", "dbias"])


@pytest.mark.parametrize("mode", ["meso", "global"])
def test_window_attention_cuda_no_bias_small_window(mode):
    case, ref_case = on_cuda(window_case(h=12, w=20, d=7, window=4, bias=False), torch.float32)
    compare(run_window("cuda", case, mode, 4), run_window("reference", ref_case, mode, 4),
            torch.float32, ["out", "attn", "dqkv"])


@pytest.mark.parametrize("mode", ["meso", "global"])
def test_window_attention_cuda_real_shape(mode):
    case, ref_case = on_cuda(window_case(b=1, h=184, w=320, d=36, seed=7), torch.float32)
    compare(run_window("cuda", case, mode), run_window("reference", ref_case, mode),
            torch.float32, ["out", "attn", "dqkv", "dbias"])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mode", ["meso", "global"])
def test_shared_window_attention_cuda(mode, dtype):
    g = torch.Generator().manual_seed(1)
    attn = torch.randn(12, 64, 64, generator=g).softmax(-1)
    x = torch.randn(2, 16, 24, 48, generator=g)
    grad = torch.randn(2, 16, 24, 24, generator=g)
    results = []
    for backend, to in (("cuda", dtype), ("reference", torch.float32)):
        a = attn.to("cuda", dtype).to(to).requires_grad_()
        xx = x.to("cuda", dtype).to(to).requires_grad_()
        out = ops.shared_window_attention(a, xx[..., 24:], mode=mode, backend=backend)
        results.append([out, *torch.autograd.grad(out, (a, xx), grad.to("cuda", to))])
    compare(*results, dtype, ["out", "dattn", "dv"])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("hw", [(16, 24), (184, 320)])
@pytest.mark.parametrize("mode", ["window", "cell"])
def test_channel_attention_cuda(mode, hw, dtype):
    case, ref_case = on_cuda(channel_case(b=2 if hw[0] < 100 else 1, h=hw[0], w=hw[1]), dtype)
    compare(run_channel("cuda", case, mode), run_channel("reference", ref_case, mode), dtype,
            ["out", "dqkv", "dtemperature"])


def test_opcheck_cuda():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 8, 16, 18, generator=g).cuda()
    q, k, v = x[..., :6], x[..., 6:12], x[..., 12:]
    bias, t = torch.randn(64, 64).cuda(), torch.ones(1, 1, 1).cuda()
    out, attn = torch.ops.asid_fast.window_attention_fwd(q, k, v, bias, "global", 8, 0.4)
    _, cattn, rq, rk = torch.ops.asid_fast.channel_attention_fwd(q, k, v, t, "window", 8)
    go = torch.randn_like(out)
    cases = [
        (torch.ops.asid_fast.window_attention_fwd, (q, k, v.clone().requires_grad_(), bias,
                                                    "global", 8, 0.4)),
        (torch.ops.asid_fast.window_attention_bwd, (go, attn, q, k, v, attn, bias, "meso", 8, 0.4)),
        (torch.ops.asid_fast.shared_window_attention_fwd, (attn, v, "meso", 8)),
        (torch.ops.asid_fast.shared_window_attention_bwd, (go, attn, v, "global", 8)),
        (torch.ops.asid_fast.channel_attention_fwd, (q, k, v, t, "cell", 8)),
        (torch.ops.asid_fast.channel_attention_bwd, (go, q, k, v, t, cattn, rq, rk, "window", 8)),
    ]
    for op, args in cases:
        torch.library.opcheck(op, args)


def test_cuda_limits_raise_clear_errors():
    q, k, v = (torch.randn(1, 32, 32, 8, device="cuda") for _ in range(3))
    with pytest.raises(RuntimeError, match="at most 64 tokens"):
        torch.ops.asid_fast.window_attention_fwd(q, k, v, None, "meso", 16, 1.0)
    with pytest.raises(TypeError, match="take float32, float16, bfloat16"):
        ops.window_attention(q.double(), k.double(), v.double(), backend="cuda")
    c = torch.randn(1, 16, 16, 65, device="cuda")
    with pytest.raises(RuntimeError, match="at most 64 channels"):
        ops.channel_attention(c, c, c, torch.ones(1, device="cuda"), backend="cuda")
