"""The compiled extension's registration and contract: it is built, gradcheck in float64,
torch.library.opcheck on the six ops, FLOP counting, clear errors on bad input, and the clean
fallback when asid_fast._C is missing."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from asid_fast import ops
from asid_fast.ops.backends import ext

built = pytest.mark.skipif(not ext.available("cpu"), reason=ext.why_unavailable())
OPS = torch.ops.asid_fast


def test_extension_is_built_unless_skipped_on_purpose():
    if os.environ.get("ASID_FAST_NO_EXT", "") not in ("", "0"):
        pytest.skip("ASID_FAST_NO_EXT is set")
    assert ext.available("cpu"), ext.why_unavailable()
    assert ext._C.cpu_isa() in ("avx2", "baseline")


def _maps(*shape, count=3, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(*shape, dtype=dtype, generator=g).requires_grad_() for _ in range(count)]


@built
@pytest.mark.parametrize("mode", ["meso", "global"])
def test_gradcheck_window_attention(mode):
    q, k, v = _maps(2, 4, 6, 3)
    bias = torch.randn(4, 4, dtype=torch.float64).requires_grad_()
    fn = lambda q, k, v, b: ops.window_attention(q, k, v, b, mode=mode, window=2, backend="cpu")
    assert torch.autograd.gradcheck(fn, (q, k, v, bias))


@built
@pytest.mark.parametrize("mode", ["meso", "global"])
def test_gradcheck_shared_window_attention(mode):
    (v,) = _maps(2, 4, 6, 3, count=1)
    attn = torch.randn(12, 4, 4, dtype=torch.float64).softmax(-1).requires_grad_()
    fn = lambda a, v: ops.shared_window_attention(a, v, mode=mode, window=2, backend="cpu")
    assert torch.autograd.gradcheck(fn, (attn, v))


@built
@pytest.mark.parametrize("mode", ["window", "cell"])
def test_gradcheck_channel_attention(mode):
    q, k, v = _maps(2, 4, 6, 3)
    t = torch.tensor([0.8], dtype=torch.float64).requires_grad_()
    fn = lambda q, k, v, t: ops.channel_attention(q, k, v, t, mode=mode, window=2, backend="cpu")
    assert torch.autograd.gradcheck(fn, (q, k, v, t))


def _opcheck_cases():
    g = torch.Generator().manual_seed(0)
    r = lambda *s: torch.randn(*s, generator=g)
    x = r(2, 8, 12, 15)
    q, k, v = x[..., :5], x[..., 5:10], x[..., 10:]  # strided views
    attn = r(12, 16, 16).softmax(-1)  # 2 x 2 x 3 windows of 4 x 4
    go, ga, bias, t = r(2, 8, 12, 5), r(12, 16, 16), r(16, 16), r(1, 1, 1)
    _, cattn, rq, rk = OPS.channel_attention_fwd(q, k, v, t, "cell", 4)
    return {
        "window_fwd": (OPS.window_attention_fwd, (q, k, v, bias, "global", 4, 0.5)),
        "window_fwd_grad": (OPS.window_attention_fwd,
                            (q.clone().requires_grad_(), k, v, None, "meso", 4, 0.5)),
        "window_bwd": (OPS.window_attention_bwd, (go, ga, q, k, v, attn, bias, "meso", 4, 0.5)),
        "window_bwd_nobias": (OPS.window_attention_bwd,
                              (go, None, q, k, v, attn, None, "global", 4, 0.5)),
        "shared_fwd": (OPS.shared_window_attention_fwd,
                       (attn.clone().requires_grad_(), v, "global", 4)),
        "shared_bwd": (OPS.shared_window_attention_bwd, (go, attn, v, "meso", 4)),
        "channel_fwd": (OPS.channel_attention_fwd, (q, k, v.clone().requires_grad_(), t, "cell", 4)),
        "channel_bwd": (OPS.channel_attention_bwd,
                        (go, q, k, v, t, cattn, rq, rk, "cell", 4)),
    }


@built
@pytest.mark.parametrize("case", ["window_fwd", "window_fwd_grad", "window_bwd",
                                  "window_bwd_nobias", "shared_fwd", "shared_bwd", "channel_fwd",
                                  "channel_bwd"])
def test_opcheck(case):
    op, args = _opcheck_cases()[case]
    torch.library.opcheck(op, args)


@built
def test_flop_counter_counts_the_extension_like_the_reference():
    q, k, v = _maps(1, 16, 16, 12, dtype=torch.float32)
    counts = []
    for backend in ("cpu", "reference"):
        with FlopCounterMode(display=False) as counter:
            out, attn = ops.window_attention(q, k, v, mode="meso", backend=backend)
            (out.sum() + attn.sum()).backward()
        counts.append(counter.get_total_flops())
    assert counts[0] == counts[1] > 0


# ---- bad input: clear errors through the public API and from the ops themselves -------------

def _qkv(shape=(1, 16, 16, 12)):
    return [torch.randn(*shape) for _ in range(3)]


@built
@pytest.mark.parametrize("make,error,match", [
    (lambda: [t.permute(0, 2, 3, 1) for t in [torch.randn(1, 16, 16, 16)] * 3], ValueError,
     "unit stride on the channel axis"),  # channels-first data viewed as (B, H, W, d)
    (lambda: _qkv((1, 16, 16, 65)), ValueError, "exceeds the supported maximum 64"),
    (lambda: _qkv((1, 12, 16, 8)), ValueError, "multiples of window=8"),
    (lambda: _qkv()[:2] + [torch.randn(1, 16, 16, 12, device="meta")], ValueError,
     "v is on meta but q is on cpu"),
    (lambda: [torch.randn(16, 16, 12)] * 3, ValueError, r"\(B, H, W, d\) channels-last"),
    (lambda: [t.half() for t in _qkv()], TypeError, "take float32, float64"),
])
def test_window_attention_rejects_bad_input(make, error, match):
    q, k, v = make()
    with pytest.raises(error, match=match):
        ops.window_attention(q, k, v, backend="cpu")


@built
def test_other_ops_reject_bad_input():
    q, k, v = _qkv()
    with pytest.raises(ValueError, match="bias must be"):
        ops.window_attention(q, k, v, torch.zeros(8, 8), backend="cpu")
    with pytest.raises(ValueError, match="attn must be"):
        ops.shared_window_attention(torch.zeros(3, 64, 64), v, backend="cpu")
    with pytest.raises(ValueError, match="mode must be one of"):
        ops.channel_attention(q, k, v, torch.ones(1), mode="meso", backend="cpu")
    with pytest.raises(ValueError, match="temperature must have one element"):
        ops.channel_attention(q, k, v, torch.ones(2), backend="cpu")


@built
def test_ops_called_directly_check_their_arguments():
    q, k, v = _qkv()
    with pytest.raises(RuntimeError, match="mode must be 'meso' or 'global'"):
        OPS.window_attention_fwd(q, k, v, None, "cell", 8, 1.0)
    with pytest.raises(RuntimeError, match="unit channel stride"):
        OPS.window_attention_fwd(q, k, torch.randn(1, 16, 12, 16).transpose(2, 3), None, "meso",
                                 8, 1.0)
    # The numbers in these messages are formatted inside the extension: an extension linked
    # against a second, static libstdc++ loses them (or crashes) there, see setup.py.
    with pytest.raises(RuntimeError, match=r"bias must have shape \[64, 64\], got \[64, 63\]"):
        OPS.window_attention_fwd(q, k, v, torch.zeros(64, 63), "meso", 8, 1.0)
    with pytest.raises(RuntimeError, match="attn must have shape"):
        OPS.shared_window_attention_bwd(v, torch.zeros(3, 64, 64), v, "meso", 8)
    with pytest.raises(RuntimeError, match=r"multiples of window=5, got \[1, 16, 16, \d+\]"):
        OPS.channel_attention_fwd(q, k, v, torch.ones(1), "cell", 5)


def test_missing_extension_falls_back_with_one_warning():
    """With asid_fast._C unimportable (not built, or ASID_FAST_NO_EXT at build time) the package
    imports, "auto" warns once and runs the reference, and backend="cpu" says why it cannot."""
    script = textwrap.dedent("""
        import sys, warnings
        sys.modules["asid_fast._C"] = None  # makes `import asid_fast._C` fail
        import torch
        from asid_fast import ops
        from asid_fast.reference import functional as RF
        q, k, v = (torch.randn(1, 8, 8, 4) for _ in range(3))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            out, _ = ops.window_attention(q, k, v)
            ops.window_attention(q, k, v)
        messages = [str(w.message) for w in caught if "asid_fast" in str(w.message)]
        assert len(messages) == 1 and "could not be imported" in messages[0], messages
        assert torch.equal(out, RF.window_attention(q, k, v)[0])
        try:
            ops.window_attention(q, k, v, backend="cpu")
        except RuntimeError as err:
            assert "could not be imported" in str(err), err
        else:
            raise AssertionError("backend='cpu' ran without the extension")
        print("ok")
    """)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {**os.environ, "PYTHONPATH": root + os.pathsep + os.environ.get("PYTHONPATH", "")}
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            env=env, timeout=120)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr
