"""The model-level fused ops (``asid_fast.ops.layer_norm``, ``asid_fast.ops.depthwise_conv``,
``asid_fast.ops.conv_chain``, ``asid_fast.ops.linear``) on the compiled CPU backend and the Triton backend (interpreter on
CPU tensors) against their reference twins.

Tolerances, as max |actual - expected| / max |expected| per tensor, against the reference run in
float64 on the same inputs: float64 1e-12 (measured ~1e-15); float32 1e-5 (measured < 1e-6:
float32 rounding of a 9-tap sum or a C-term mean, and the float32 erf of the CPU GELU, |error|
< 4e-7; the Triton kernels use tl.math.erf).
"""
import os
import sys

import pytest
import torch

if not torch.cuda.is_available():  # the Triton kernels run through the interpreter (see conftest)
    os.environ.setdefault("TRITON_INTERPRET", "1")

from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from asid_fast.ops import _fused_dispatch  # noqa: E402
from asid_fast.ops.conv_chain import conv_chain  # noqa: E402
from asid_fast.ops.depthwise_conv import depthwise_conv3x3  # noqa: E402
from asid_fast.ops.layer_norm import layer_norm  # noqa: E402
from asid_fast.ops.linear import linear  # noqa: E402

TOL = {torch.float64: 1e-12, torch.float32: 1e-5}
DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")
pytestmark = [pytest.mark.cuda] if DEVICE.type == "cuda" else []  # in the device script's run


def _backend_usable(name):
    try:
        _fused_dispatch.resolve(name, DEVICE.type, "fused_layer_norm", torch.float32)
        _fused_dispatch.resolve(name, DEVICE.type, "fused_dwconv3x3", torch.float32)
    except RuntimeError as err:
        return False, str(err)
    return True, ""


def _backends():
    params = []
    for name in ("cpu" if DEVICE.type == "cpu" else "cuda", "triton"):
        ok, why = _backend_usable(name)
        params.append(pytest.param(name, marks=pytest.mark.skipif(not ok, reason=why)))
    return params


BACKENDS = _backends()


def test_auto_order_per_family():
    """On CUDA "auto" runs the depthwise convolution on cuDNN (the reference twin; faster than
    both kernels on an H200) and the layer norm on the CUDA kernel first; on the CPU both
    families take the compiled kernels when the extension is built."""
    order = _fused_dispatch.family_auto_order
    assert order("cuda", "fused_dwconv3x3", torch.float32) == ("reference",)
    assert order("cuda", "fused_layer_norm", torch.float32) == ("cuda", "triton", "reference")
    assert order("cpu", "fused_dwconv3x3", torch.float32) == ("cpu", "reference")
    if _backend_usable("cpu")[0]:  # the extension is built and DEVICE is the CPU
        for family in ("fused_dwconv3x3", "fused_layer_norm"):
            assert _fused_dispatch.resolve("auto", "cpu", family, torch.float32) == "compiled"


def assert_rel(actual, expected, tol, name=""):
    err = (actual.double() - expected.double()).abs().max().item()
    scale = expected.double().abs().max().item()
    assert err <= tol * max(scale, 1e-30), f"{name}: max abs error {err:.3e} > {tol:g} * {scale:.3e}"


def strided_copy(x, dtype):
    """x converted to dtype on DEVICE with x's strides kept (a strided view stays strided)."""
    return torch.empty_strided(x.shape, x.stride(), dtype=dtype, device=DEVICE).copy_(x)


def run(fn, inputs, backend):
    """fn's output and the gradients of sum(output * fixed cotangent) for every tensor input."""
    leaves = [x.detach().requires_grad_(True) if x is not None else None for x in inputs]
    out = fn(*leaves, backend=backend)
    cot = torch.randn(out.shape, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    out.backward(cot.to(out))
    return [out] + [x.grad for x in leaves if x is not None]


def check_against_reference(fn, inputs, backend, dtype):
    """Run fn on ``backend`` in ``dtype`` and the reference twin in float64 on the same values."""
    cast = [strided_copy(x, dtype) if x is not None else None for x in inputs]
    got = run(fn, cast, backend)
    want = run(fn, [strided_copy(x, torch.float64) if x is not None else None for x in cast],
               "reference")
    assert len(got) == len(want)
    for i, (g, w) in enumerate(zip(got, want)):
        assert g.dtype == dtype and g.shape == w.shape, (i, g.dtype, g.shape, w.shape)
        assert_rel(g, w, TOL[dtype], f"output/grad {i}")


def channel_slice(b, h, w, c, offset=5):
    """A (b, h, w, c) map whose rows are strided (a channel slice of a wider map)."""
    return torch.randn(b, h, w, c + offset, dtype=torch.float64)[..., offset:]


def _ln(x, weight, bias, backend):
    return layer_norm(x, weight, bias, 1e-6, backend=backend)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("channels,strided", [(12, True), (36, False), (48, True), (13, False)])
def test_layer_norm_matches_reference(backend, dtype, channels, strided):
    x = channel_slice(2, 5, 7, channels) if strided else torch.randn(2, 5, 7, channels,
                                                                      dtype=torch.float64)
    weight, bias = torch.randn(2, channels, dtype=torch.float64)
    check_against_reference(_ln, [x, weight, bias], backend, dtype)


def _dwconv(epilogue):
    def fn(x, weight, bias, backend):
        return depthwise_conv3x3(x, weight, bias, epilogue=epilogue, backend=backend)
    return fn


DWCONV_CASES = [  # channels, epilogue, with bias, strided input
    (12, "none", False, False),
    (144, "none", False, True),
    (36, "gelu", True, False),
    (9, "gelu", True, True),
    (72, "gate", False, False),
    (26, "gate", False, True),
]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("channels,epilogue,with_bias,strided", DWCONV_CASES)
def test_dwconv_matches_reference(backend, dtype, channels, epilogue, with_bias, strided):
    if backend == "triton" and dtype == torch.float64 and epilogue != "gate":
        pytest.skip("interpreter time: float64 Triton runs the gate case only")
    x = channel_slice(2, 5, 6, channels) if strided else torch.randn(2, 5, 6, channels,
                                                                     dtype=torch.float64)
    weight = torch.randn(channels, 1, 3, 3, dtype=torch.float64) / 3
    bias = torch.randn(channels, dtype=torch.float64) if with_bias else None
    check_against_reference(_dwconv(epilogue), [x, weight, bias], backend, dtype)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("h,w", [(1, 1), (1, 5), (4, 1)])
def test_dwconv_borders_of_tiny_maps(backend, h, w):
    """Every tap falls outside the map somewhere: zero padding on all four borders."""
    x = torch.randn(2, h, w, 16, dtype=torch.float64)
    weight, bias = torch.randn(16, 1, 3, 3, dtype=torch.float64), torch.randn(16, dtype=torch.float64)
    check_against_reference(_dwconv("gate"), [x, weight, bias], backend, torch.float64)


def test_gradcheck_compiled_ops():
    ok, why = _backend_usable("cpu")
    if DEVICE.type != "cpu" or not ok:
        pytest.skip(why or "CPU only")
    x = torch.randn(1, 3, 4, 6, dtype=torch.float64, requires_grad=True)
    w, b = (torch.randn(6, dtype=torch.float64, requires_grad=True) for _ in range(2))
    assert torch.autograd.gradcheck(lambda *a: _ln(*a, "cpu"), (x, w, b))
    k = torch.randn(6, 1, 3, 3, dtype=torch.float64, requires_grad=True)
    for epilogue in ("none", "gelu", "gate"):
        assert torch.autograd.gradcheck(_dwconv(epilogue), (x, k, b, "cpu")), epilogue


def _op_cases(prefix):
    ns = torch.ops.asid_fast
    x = torch.randn(2, 2, 3, 4, dtype=torch.float64, device=DEVICE)
    w, b = (torch.randn(4, dtype=torch.float64, device=DEVICE) for _ in range(2))
    k = torch.randn(4, 1, 3, 3, dtype=torch.float64, device=DEVICE)
    y, mean, rstd = getattr(ns, prefix + "fused_layer_norm_fwd")(x, w, b, 1e-6)
    cases = [(prefix + "fused_layer_norm_fwd", (x, w, b, 1e-6)),
             (prefix + "fused_layer_norm_bwd", (torch.randn_like(y), x, w, mean, rstd))]
    for epilogue, bias in (("none", None), ("gelu", b), ("gate", None)):
        out = getattr(ns, prefix + "fused_dwconv3x3_fwd")(x, k, bias, epilogue)
        cases += [(prefix + "fused_dwconv3x3_fwd", (x, k, bias, epilogue)),
                  (prefix + "fused_dwconv3x3_bwd", (torch.randn_like(out), x, k, bias, epilogue))]
    return cases


@pytest.mark.parametrize("backend", BACKENDS)
def test_opcheck(backend):
    """Schemas, fake kernels and autograd registration of every registered fused op."""
    prefix = "triton_" if backend == "triton" else ""
    for name, args in _op_cases(prefix):
        op = getattr(torch.ops.asid_fast, name).default
        args = tuple(a.requires_grad_() if isinstance(a, torch.Tensor) and name.endswith("fwd")
                     else a for a in args)
        torch.library.opcheck(op, args, test_utils=("test_schema", "test_autograd_registration",
                                                    "test_faketensor"))


@pytest.mark.parametrize("backend", BACKENDS)
def test_flop_formula(backend):
    x = torch.randn(2, 3, 4, 6, dtype=torch.float64, device=DEVICE, requires_grad=True)
    k = torch.randn(6, 1, 3, 3, dtype=torch.float64, device=DEVICE, requires_grad=True)
    with FlopCounterMode(display=False) as counter:
        depthwise_conv3x3(x, k, epilogue="gate", backend=backend).sum().backward()
    forward = 2 * 9 * x.numel()
    assert counter.get_total_flops() == 3 * forward  # forward + dx + dweight


@pytest.mark.parametrize("backend", ["reference"] + BACKENDS)
def test_bad_inputs_raise_clear_errors(backend):
    x = torch.randn(1, 4, 4, 6, dtype=torch.float64)
    w = torch.ones(6, dtype=torch.float64)
    with pytest.raises(ValueError, match="weight must be a \\(6,\\)"):
        layer_norm(x, w[:4], w, 1e-6, backend=backend)
    with pytest.raises(ValueError, match="channels-last map"):
        layer_norm(x[0], w, w, 1e-6, backend=backend)
    with pytest.raises(ValueError, match="float32"):
        layer_norm(x, w.float(), w, 1e-6, backend=backend)
    k = torch.ones(6, 1, 3, 3, dtype=torch.float64)
    with pytest.raises(ValueError, match="epilogue must be one of"):
        depthwise_conv3x3(x, k, epilogue="relu", backend=backend)
    with pytest.raises(ValueError, match="even channel count"):
        depthwise_conv3x3(x[..., :5], k[:5], epilogue="gate", backend=backend)
    with pytest.raises(ValueError, match="weight must be \\(6, 1, 3, 3\\)"):
        depthwise_conv3x3(x, k[:, :, :2], backend=backend)
    with pytest.raises(TypeError, match="float32/float64"):
        depthwise_conv3x3(x.long(), k, backend=backend)


def test_compiled_ops_check_direct_calls():
    ok, why = _backend_usable("cpu")
    if DEVICE.type != "cpu" or not ok:
        pytest.skip(why or "CPU only")
    ns = torch.ops.asid_fast
    x = torch.randn(1, 4, 4, 6)
    with pytest.raises(RuntimeError, match="weight must have shape"):
        ns.fused_dwconv3x3_fwd(x, torch.ones(6, 1, 3, 2), None, "none")
    with pytest.raises(RuntimeError, match="epilogue must be"):
        ns.fused_dwconv3x3_fwd(x, torch.ones(6, 1, 3, 3), None, "relu")
    with pytest.raises(RuntimeError, match="unit channel stride"):
        ns.fused_layer_norm_fwd(x.transpose(2, 3), torch.ones(4), torch.ones(4), 1e-6)


CHAIN_CASES = [  # K, n_in, norm, b_in, gelu_in, b_dw, epilogue, w_out, strided x
    (12, 24, True, False, False, False, "gate", True, False),  # gated FFN
    (36, 72, True, False, False, False, "gate", True, True),
    (24, 24, False, True, True, True, "gelu", False, True),  # local module head
    (36, 36, False, True, True, True, "gelu", False, False),  # (36: a vector tail, in place)
    (13, 13, True, False, False, False, "none", False, False),  # channel-attention q/k/v
    (12, 36, True, False, False, None, "none", False, True),  # window-attention qkv (no dw)
    (12, 20, False, True, True, None, "none", True, False),  # no dw, with w_out
]


def _chain_inputs(k, n_in, norm, b_in, b_dw, epilogue, w_out, strided):
    """b_dw None: no depthwise conv at all (w_dw None)."""
    g = torch.Generator().manual_seed(k + n_in)
    r = lambda *s: torch.randn(*s, generator=g, dtype=torch.float64)  # noqa: E731
    n_mid = n_in // 2 if epilogue == "gate" else n_in
    x = r(2, 5, 6, k + 3)[..., 3:] if strided else r(2, 5, 6, k)
    w_dw = r(n_in, 1, 3, 3) / 3 if b_dw is not None else None
    return [x, r(n_in, k) / k ** 0.5, w_dw, r(k) if norm else None,
            r(k) if norm else None, r(n_in) if b_in else None, r(n_in) if b_dw else None,
            r(k, n_mid) / n_mid ** 0.5 if w_out else None]


def _chain(gelu_in, epilogue):
    def fn(x, w_in, w_dw, nw, nb, b_in, b_dw, w_out, backend):
        norm = (nw, nb, 1e-6) if nw is not None else None
        return conv_chain(x, w_in, w_dw, norm=norm, b_in=b_in, gelu_in=gelu_in, b_dw=b_dw,
                          epilogue=epilogue, w_out=w_out, backend=backend)
    return fn


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("k,n_in,norm,b_in,gelu_in,b_dw,epilogue,w_out,strided", CHAIN_CASES)
def test_conv_chain_matches_reference(backend, dtype, k, n_in, norm, b_in, gelu_in, b_dw,
                                      epilogue, w_out, strided):
    """Forward and every gradient (on the compiled backend with gradients the chain runs as
    composed ops; the streamed operator is checked without gradients, and its autograd by
    recomputation, in the tests below)."""
    if backend == "triton" and (dtype == torch.float64 or k == 36):
        pytest.skip("interpreter time: Triton runs the float32 cases of width <= 24 only")
    inputs = _chain_inputs(k, n_in, norm, b_in, b_dw, epilogue, w_out, strided)
    check_against_reference(_chain(gelu_in, epilogue), inputs, backend, dtype)


def _streamed_op_usable():
    ok, why = _backend_usable("cpu")
    if DEVICE.type != "cpu" or not ok:
        pytest.skip(why or "CPU only")


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("k,n_in,norm,b_in,gelu_in,b_dw,epilogue,w_out,strided", CHAIN_CASES)
def test_streamed_conv_chain_matches_reference(dtype, k, n_in, norm, b_in, gelu_in, b_dw,
                                               epilogue, w_out, strided):
    """The row-streamed operator (no gradient needed) against the reference in float64."""
    _streamed_op_usable()
    inputs = _chain_inputs(k, n_in, norm, b_in, b_dw, epilogue, w_out, strided)
    fn = _chain(gelu_in, epilogue)
    with torch.no_grad():
        got = fn(*[strided_copy(t, dtype) if t is not None else None for t in inputs],
                 backend="cpu")
        want = fn(*inputs, backend="reference")
    assert got.dtype == dtype
    assert_rel(got, want, TOL[dtype], "streamed conv chain")


def test_streamed_conv_chain_autograd_and_opcheck():
    """The operator's own autograd (recomputation through the composition) and registration."""
    _streamed_op_usable()
    x, w_in, w_dw, nw, nb, _, _, w_out = _chain_inputs(12, 24, True, False, False, "gate", True,
                                                       False)
    args = [x, nw, nb, 1e-6, w_in, None, False, w_dw, None, "gate", w_out]
    op = torch.ops.asid_fast.fused_conv_chain_fwd.default
    torch.library.opcheck(op, args, test_utils=("test_schema", "test_faketensor"))
    leaves = [a.requires_grad_() if isinstance(a, torch.Tensor) else a for a in args]
    tensors = [a for a in leaves if isinstance(a, torch.Tensor)]
    assert torch.autograd.gradcheck(lambda *t: op(t[0], t[1], t[2], 1e-6, t[3], None, False,
                                                  t[4], None, "gate", t[5]), tensors)


LINEAR_CASES = [  # input widths, N, bias, residual, per-image weights, strided inputs
    ((36,), 108, False, False, False, False),
    ((36, 12), 48, True, False, False, True),  # pw conv on cat(y, loc)
    ((12, 12, 12, 12), 48, True, False, False, True),
    ((24,), 24, True, True, True, False),  # local module's last conv (per-image SE scale)
    ((13,), 13, False, True, False, True),
]


def _linear_inputs(widths, n, bias, residual, per_image, strided):
    g = torch.Generator().manual_seed(sum(widths) + n)
    r = lambda *s: torch.randn(*s, generator=g, dtype=torch.float64)  # noqa: E731
    k = sum(widths)
    xs = [r(2, 5, 6, w + 2)[..., 1:-1] if strided else r(2, 5, 6, w) for w in widths]
    weight = (r(2, n, k) if per_image else r(n, k)) / k ** 0.5
    return xs, weight, r(n) if bias else None, (r(2, 5, 6, n) if residual else None)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("widths,n,bias,residual,per_image,strided", LINEAR_CASES)
def test_linear_matches_reference(dtype, widths, n, bias, residual, per_image, strided):
    """Forward and every gradient of the compiled operator against torch.cat + matmul."""
    _streamed_op_usable()
    xs, weight, b, res = _linear_inputs(widths, n, bias, residual, per_image, strided)
    m = len(xs)

    def fn(*args, backend):
        return linear(list(args[:m]), args[m], args[m + 1], args[m + 2], backend=backend)
    check_against_reference(fn, [*xs, weight, b, res], "cpu", dtype)


def test_linear_op_registration_and_gradcheck():
    _streamed_op_usable()
    xs, weight, b, res = _linear_inputs((5, 3), 6, True, True, True, True)
    op = torch.ops.asid_fast.fused_linear_fwd.default
    torch.library.opcheck(op, (xs, weight, b, res), test_utils=("test_schema", "test_faketensor"))
    leaves = [t.requires_grad_() for t in (*xs, weight, b, res)]
    assert torch.autograd.gradcheck(lambda *t: op(list(t[:2]), *t[2:]), leaves)


def test_linear_bad_inputs():
    x = torch.randn(1, 4, 4, 6)
    with pytest.raises(ValueError, match="1 to 4 maps"):
        linear([x] * 5, torch.randn(3, 30))
    _streamed_op_usable()
    with pytest.raises(RuntimeError, match="weight must be"):
        linear([x], torch.randn(3, 5), backend="cpu")
    with pytest.raises(RuntimeError, match="residual must have shape"):
        linear([x], torch.randn(3, 6), residual=torch.randn(1, 4, 4, 4), backend="cpu")


def test_unknown_backend():
    x = torch.randn(1, 4, 4, 6)
    with pytest.raises(ValueError, match="backend must be one of"):
        layer_norm(x, torch.ones(6), torch.ones(6), 1e-6, backend="gpu")


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))
