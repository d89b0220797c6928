"""The operator table and its dispatch: every registered op passes torch.library.opcheck
(schema, fake kernel, autograd registration) in each library that implements it; the FLOP
formulas count what the references' own products count; "auto" and explicit backends resolve as
documented; bad arguments get clear errors from the public functions and from the compiled ops
called directly; a missing extension falls back with one warning."""
from __future__ import annotations

import importlib
import os
import subprocess
import sys
import textwrap

import pytest
import torch

from asid_fast import flops as FL
from asid_fast import ops
from asid_fast.ops import _registry
from asid_fast.ops._registry import OPS, library_op, resolve, why_not
from helpers import DEVICE, compiled_backends
from op_cases import reference_outputs, smallest_case

pytestmark = [pytest.mark.cuda] if DEVICE.type == "cuda" else []  # in the device script's run
EXTENSION = pytest.mark.skipif(why_not("window_attention_fwd", "cpu", "cpu", torch.float32)
                               is not None, reason="the CPU extension is not usable")


def test_extension_is_built_unless_skipped_on_purpose():
    if os.environ.get("ASID_FAST_NO_EXT", "") not in ("", "0"):
        pytest.skip("ASID_FAST_NO_EXT is set")
    assert _registry.extension() is not None, _registry.why_unavailable("cpu", "cpu")
    assert _registry.extension().cpu_isa() in _registry.extension().cpu_isas


# ---- opcheck ------------------------------------------------------------------------------------

def _opcheck_grid():
    params = []
    for name, op in OPS.items():
        for backend in compiled_backends():
            if backend not in op.backends:
                continue
            reason = why_not(name, backend, DEVICE.type, torch.float64)
            marks = [pytest.mark.skipif(True, reason=reason)] if reason else []
            params.append(pytest.param(name, backend, marks=marks, id=f"{name}-{backend}"))
    return params


@pytest.mark.parametrize("name,backend", _opcheck_grid())
def test_opcheck(name, backend):
    args = smallest_case(name).make(torch.float64, DEVICE)
    if name.endswith("_fwd"):  # so that the autograd registration is checked too
        args = [a.requires_grad_() if isinstance(a, torch.Tensor) else a for a in args]
    torch.library.opcheck(library_op(name, backend), args)


def test_every_op_is_registered_at_import_in_a_fresh_process():
    """Schemas, fake kernels and the extension's kernels exist after `import asid_fast` alone (a
    saved graph can then be loaded): checked in a process that imports nothing else."""
    script = textwrap.dedent("""
        import torch, asid_fast
        from asid_fast.ops._registry import OPS, PREFIX
        missing = [p + n for n, op in OPS.items() for p in {PREFIX[b] for b in op.backends}
                   if not hasattr(torch.ops.asid_fast, p + n)]
        assert not missing, missing
        x = torch.randn(1, 2, 3, 4, device="meta")
        y, mean, rstd = torch.ops.asid_fast.layer_norm_fwd(x, x[0, 0, 0], x[0, 0, 0], 1e-6)
        assert y.shape == x.shape and mean.shape == (1, 2, 3)
        print("ok")
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr


# ---- FLOP formulas ------------------------------------------------------------------------------

def _counts(fn, args):
    """Full-rule FLOPs of fn(*args) alone, and with the backward of its differentiable outputs."""
    with torch.no_grad():
        forward = FL.count_full_rule(fn, *args)
    leaves = [a.detach().requires_grad_() if isinstance(a, torch.Tensor) and a.is_floating_point()
              else a for a in args]

    def step():
        outs = fn(*leaves)
        outs = [o for o in (outs if isinstance(outs, tuple) else (outs,)) if o.requires_grad]
        tensors = [t for t in leaves if isinstance(t, torch.Tensor)]
        torch.autograd.grad(outs, tensors, [torch.ones_like(o) for o in outs], allow_unused=True)
    return forward, FL.count_full_rule(step)


@pytest.mark.parametrize("name", sorted(n for n, op in OPS.items()
                                        if n.endswith("_fwd") and n != "linear_fwd"))
def test_flop_formula_counts_the_reference_products(name):
    """On meta tensors (no arithmetic): the registered op (its fake kernel, formula and autograd)
    counts what the float64 reference counts, forward and forward+backward. The backward of the
    convolution chain and the attention blocks recomputes their forward, so only their forward
    is compared."""
    args = [a.to("meta") if isinstance(a, torch.Tensor) else a
            for a in smallest_case(name).make(torch.float64, "cpu")]
    fused = _counts(library_op(name, "triton" if "triton" in OPS[name].backends else "cpu"), args)
    reference = _counts(OPS[name].reference, args)
    if name in ("conv_chain_fwd", "attention_block_fwd", "shared_attention_block_fwd"):
        assert fused[0] == reference[0] > 0
    else:
        assert fused == reference


def test_linear_flop_formula():
    """2 K N per pixel, like the matmul the reference runs (its C++ autograd needs the extension,
    so the forward only)."""
    xs = [torch.randn(2, 3, 4, 5, device="meta"), torch.randn(2, 3, 4, 7, device="meta")]
    w = torch.randn(6, 12, device="meta")
    count = FL.count_full_rule(torch.ops.asid_fast.linear_fwd, xs, w, None, None, None)
    assert count == 2 * 2 * 3 * 4 * 12 * 6 == FL.count_full_rule(ops.linear, xs, w,
                                                                 backend="reference")


# ---- resolution ---------------------------------------------------------------------------------

def test_auto_order():
    """On CUDA "auto" runs the depthwise convolution on cuDNN (the reference; faster than both of
    our kernels on an H200) and everything else on the CUDA kernels, then Triton; on the CPU the
    compiled kernels, then the reference."""
    assert _registry.auto_order("depthwise_conv3x3_fwd", "cuda") == ("reference",)
    assert _registry.auto_order("layer_norm_fwd", "cuda") == ("cuda", "triton", "reference")
    assert _registry.auto_order("window_attention_fwd", "cpu") == ("cpu", "reference")


def test_auto_order_by_size():
    """Channel attention on CUDA: Triton first for a few long pixel groups (the cell groups of a
    720p input at batch 1), the CUDA kernels first for many short ones (its windows, and cell
    groups of a batch of training crops); the op's own size function gives (channels, groups,
    pixels per group); the CPU order does not depend on the size. (In bfloat16: in IEEE float32
    Triton is left out, tests/test_precision.py.)"""
    def order(mode, shape, device_type="cuda"):
        q = torch.empty(shape, device="meta")
        size = OPS["channel_attention_fwd"].size(q, q, q, torch.empty(1), mode, 8)
        return _registry.auto_order("channel_attention_fwd", device_type, torch.bfloat16, size)

    assert order("cell", (1, 184, 320, 48)) == ("triton", "cuda", "reference")
    assert order("window", (1, 184, 320, 48)) == ("cuda", "triton", "reference")
    assert order("cell", (16, 64, 64, 48)) == ("cuda", "triton", "reference")
    assert order("cell", (1, 184, 320, 48), "cpu") == ("cpu", "reference")
    assert _registry.auto_order("channel_attention_fwd", "cuda") == ("cuda", "triton", "reference")
    q = torch.empty(1, 184, 320, 48, device="meta")
    assert OPS["channel_attention_bwd"].size(q, q, q, q, None, None, None, None, "cell", 8) == (
        48, 64, 920)


@EXTENSION
def test_auto_resolution_on_the_cpu():
    assert resolve("window_attention_fwd", "auto", "cpu", torch.float32, (64, 24)) == "cpu"
    # the CPU kernels take float32/64: other dtypes run the reference
    assert resolve("window_attention_fwd", "auto", "cpu", torch.bfloat16, (64, 24)) == "reference"
    assert _registry.compiled_backend("linear_fwd", "cuda", "cuda", torch.float32) is None


def test_backend_limits_skip_to_the_next_backend():
    """A window of 144 tokens fits neither a CUDA block nor a Triton tile."""
    assert "at most 64 tokens" in OPS["window_attention_fwd"].limits("cuda", 144, 20)
    assert "128 tokens" in OPS["window_attention_fwd"].limits("triton", 144, 20)
    assert OPS["window_attention_fwd"].limits("cpu", 144, 20) is None
    assert "at most 128 channels" in OPS["channel_attention_fwd"].limits("triton", 129, 64, 64)


def test_named_backends_are_checked():
    x = torch.randn(1, 8, 8, 4)
    with pytest.raises(ValueError, match="backend must be one of"):
        ops.window_attention(x, x, x, backend="gpu")
    with pytest.raises(RuntimeError, match="backend 'cuda' cannot run window_attention_fwd"):
        ops.window_attention(x, x, x, backend="cuda")
    with pytest.raises(ValueError, match="backend must be one of"):
        ops.layer_norm(x, torch.ones(4), torch.ones(4), 1e-6, backend="gpu")
    with pytest.raises(ValueError, match="backend must be one of"):
        ops.linear([x], torch.ones(3, 4), backend="gpu")


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
        assert len(messages) == 1 and "asid_fast._C is not built" in messages[0], messages
        assert torch.equal(out, RF.window_attention(q, k, v)[0])
        try:
            ops.window_attention(q, k, v, backend="cpu")
        except RuntimeError as err:
            assert "asid_fast._C is not built" in str(err), err
        else:
            raise AssertionError("backend='cpu' ran without the extension")
        print("ok")
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr


# ---- bad arguments ------------------------------------------------------------------------------

def _qkv(shape=(1, 16, 16, 12)):
    return [torch.randn(*shape) for _ in range(3)]


@pytest.mark.parametrize("backend", ["reference", *compiled_backends(torch.device("cpu"))])
@pytest.mark.parametrize("make,error,match", [
    (lambda: [t.permute(0, 2, 3, 1) for t in [torch.randn(1, 16, 16, 16)] * 3], ValueError,
     "unit stride on the channel axis"),  # channels-first data viewed as (B, H, W, d)
    (lambda: _qkv((1, 16, 16, 65)), ValueError, "exceeds the supported maximum 64"),
    (lambda: _qkv((1, 12, 16, 8)), ValueError, "multiples of window=8"),
    (lambda: _qkv()[:2] + [torch.randn(1, 16, 16, 12, device="meta")], ValueError,
     "v is on meta but q is on cpu"),
    (lambda: [torch.randn(16, 16, 12)] * 3, ValueError, r"\(B, H, W, d\) channels-last"),
    (lambda: [torch.randn(0, 16, 16, 12)] * 3, ValueError, "empty"),
    (lambda: [_qkv()[0], _qkv()[0].double(), _qkv()[0]], TypeError, "k has dtype"),
])
def test_window_attention_rejects_bad_input(backend, make, error, match):
    q, k, v = make()
    with pytest.raises(error, match=match):
        ops.window_attention(q, k, v, backend=backend)


@pytest.mark.parametrize("backend", ["reference", *compiled_backends(torch.device("cpu"))])
def test_other_ops_reject_bad_input(backend):
    q, k, v = _qkv()
    with pytest.raises(ValueError, match="bias must be"):
        ops.window_attention(q, k, v, torch.zeros(8, 8), backend=backend)
    with pytest.raises(ValueError, match="attn must be"):
        ops.shared_window_attention(torch.zeros(3, 64, 64), v, backend=backend)
    with pytest.raises(ValueError, match="mode must be one of"):
        ops.channel_attention(q, k, v, torch.ones(1), mode="meso", backend=backend)
    with pytest.raises(ValueError, match="temperature must have one element"):
        ops.channel_attention(q, k, v, torch.ones(2), backend=backend)
    x, w = torch.randn(1, 4, 4, 6, dtype=torch.float64), torch.ones(6, dtype=torch.float64)
    with pytest.raises(ValueError, match=r"weight must be a \(6,\)"):
        ops.layer_norm(x, w[:4], w, 1e-6, backend=backend)
    with pytest.raises(ValueError, match="channels-last map"):
        ops.layer_norm(x[0], w, w, 1e-6, backend=backend)
    with pytest.raises(ValueError, match="float32"):
        ops.layer_norm(x, w.float(), w, 1e-6, backend=backend)
    k3 = torch.ones(6, 1, 3, 3, dtype=torch.float64)
    with pytest.raises(ValueError, match="epilogue must be one of"):
        ops.depthwise_conv3x3(x, k3, epilogue="relu", backend=backend)
    with pytest.raises(ValueError, match="even channel count"):
        ops.depthwise_conv3x3(x[..., :5], k3[:5], epilogue="gate", backend=backend)
    with pytest.raises(ValueError, match=r"weight must be \(6, 1, 3, 3\)"):
        ops.depthwise_conv3x3(x, k3[:, :, :2], backend=backend)
    with pytest.raises(TypeError, match="float32/float64"):
        ops.depthwise_conv3x3(x.long(), k3, backend=backend)
    with pytest.raises(ValueError, match="1 to 4 maps"):
        ops.linear([x] * 5, torch.randn(3, 30), backend=backend)
    with pytest.raises(ValueError, match="without w_dw the epilogue"):
        ops.conv_chain(x, torch.randn(4, 6), None, epilogue="gate", backend=backend)


@EXTENSION
def test_compiled_ops_called_directly_check_their_arguments():
    ns = torch.ops.asid_fast
    q, k, v = _qkv()
    with pytest.raises(RuntimeError, match="mode must be 'meso' or 'global'"):
        ns.window_attention_fwd(q, k, v, None, "cell", 8, 1.0)
    with pytest.raises(RuntimeError, match="unit channel stride"):
        ns.window_attention_fwd(q, k, torch.randn(1, 16, 12, 16).transpose(2, 3), None, "meso",
                                8, 1.0)
    # The numbers in these messages are formatted inside the extension: an extension linked
    # against a second, static libstdc++ loses them (or crashes) there, see setup.py.
    with pytest.raises(RuntimeError, match=r"bias must have shape \[64, 64\], got \[64, 63\]"):
        ns.window_attention_fwd(q, k, v, torch.zeros(64, 63), "meso", 8, 1.0)
    with pytest.raises(RuntimeError, match="attn must have shape"):
        ns.shared_window_attention_bwd(v, torch.zeros(3, 64, 64), v, "meso", 8)
    with pytest.raises(RuntimeError, match=r"multiples of window=5, got \[1, 16, 16, \d+\]"):
        ns.channel_attention_fwd(q, k, v, torch.ones(1), "cell", 5)
    x = torch.randn(1, 4, 4, 6)
    with pytest.raises(RuntimeError, match="weight must have shape"):
        ns.depthwise_conv3x3_fwd(x, torch.ones(6, 1, 3, 2), None, "none")
    with pytest.raises(RuntimeError, match="epilogue must be"):
        ns.depthwise_conv3x3_fwd(x, torch.ones(6, 1, 3, 3), None, "relu")
    with pytest.raises(RuntimeError, match="unit channel stride"):
        ns.layer_norm_fwd(x.transpose(2, 3), torch.ones(4), torch.ones(4), 1e-6)
    with pytest.raises(RuntimeError, match="weight must be"):
        ns.linear_fwd([x], torch.randn(3, 5), None, None, None)
    with pytest.raises(RuntimeError, match="residual must have shape"):
        ns.linear_fwd([x], torch.randn(3, 6), None, torch.randn(1, 4, 4, 4), None)
    with pytest.raises(RuntimeError, match="gate must have shape"):
        ns.linear_fwd([x], torch.randn(3, 6), None, None, torch.randn(1, 4, 4, 4))
    chain_args = (x, None, None, 1e-6, torch.randn(8, 6), None, False, torch.randn(8, 1, 3, 3),
                  None, "gate", torch.randn(6, 4))
    with pytest.raises(RuntimeError, match=r"grad_out must be \(1, 4, 4, 6\), got \[1, 4, 4, 4\]"):
        ns.conv_chain_bwd(torch.randn(1, 4, 4, 4), *chain_args)
    with pytest.raises(RuntimeError, match="grad_out has dtype Double but x has Float"):
        ns.conv_chain_bwd(torch.randn(1, 4, 4, 6, dtype=torch.float64), *chain_args)


@EXTENSION
def test_public_conv_chain_runs_the_op_where_it_has_a_fused_backward(monkeypatch):
    """On the CPU the streamed operator serves inference and training (its backward is the fused
    conv_chain_bwd); a backend without a fused backward runs the composition under autograd
    (which saves its activations). All agree with the reference."""
    from op_cases import CASES

    chain_module = importlib.import_module("asid_fast.ops.conv_chain")
    case = next(c for c in CASES if c.op == "conv_chain_fwd" and c.label == "gated FFN")
    x, nw, nb, eps, w_in, b_in, gelu_in, w_dw, b_dw, epilogue, w_out = case.make(torch.float64,
                                                                               "cpu")
    want = reference_outputs("conv_chain_fwd", case.make(torch.float64, "cpu"))

    def chain(x):
        return ops.conv_chain(x, w_in, w_dw, norm=(nw, nb, eps), b_in=b_in, gelu_in=gelu_in,
                              b_dw=b_dw, epilogue=epilogue, w_out=w_out, backend="cpu")

    def ops_called(fn):
        with torch.autograd.profiler.profile() as prof:
            out = fn()
        names = [e.name for e in prof.function_events]
        return out, {n: names.count(f"asid_fast::{n}")
                     for n in ("conv_chain_fwd", "conv_chain_bwd")}

    def train():
        out = chain(x.clone().requires_grad_())
        out.backward(torch.ones_like(out))
        return out.detach()
    with torch.no_grad():
        streamed, called = ops_called(lambda: chain(x))
    assert called == {"conv_chain_fwd": 1, "conv_chain_bwd": 0}
    trained, called = ops_called(train)
    assert called == {"conv_chain_fwd": 1, "conv_chain_bwd": 1}
    monkeypatch.setattr(chain_module, "OPS_WITH_FUSED_BACKWARD", ())
    composed, called = ops_called(train)
    assert called == {"conv_chain_fwd": 0, "conv_chain_bwd": 0}
    for out in (streamed, trained, composed):
        assert (out - want).abs().max() <= 1e-12


def _double_backward(fn, x, w):
    g, = torch.autograd.grad((fn(x, w) ** 2).sum(), x, create_graph=True)
    g.sum().backward()
    return w.grad


_FUSED_FIRST_ORDER = {  # a Python-registered formula (conv_chain) and a C++ one (linear)
    "conv_chain": lambda x, w, backend: ops.conv_chain(x, w, None, backend=backend),
    "linear": lambda x, w, backend: ops.linear([x], w, backend=backend),
}


@EXTENSION
@pytest.mark.parametrize("name", sorted(_FUSED_FIRST_ORDER))
def test_fused_backward_refuses_higher_order_gradients(name):
    """The CPU's backward ops (conv_chain_bwd, linear_bwd) have no derivatives of their own:
    create_graph through them would give silently wrong second-order gradients (zero), so it is
    refused; the reference computes them."""
    op = _FUSED_FIRST_ORDER[name]
    x = torch.randn(1, 4, 4, 16, dtype=torch.float64, requires_grad=True)
    w = torch.randn(16, 16, dtype=torch.float64, requires_grad=True)
    with pytest.raises(RuntimeError, match="higher-order gradients"):
        _double_backward(lambda x, w: op(x, w, "cpu"), x, w)
    expected = _double_backward(lambda x, w: op(x, w, "reference"), x.detach().requires_grad_(),
                                w.detach().requires_grad_())
    assert expected.abs().max() > 0
