"""bf16 products on the CPU (csrc/cpu/bf16_products.h): where torch allows bf16 for float32
matmuls on the CPU (``torch.backends.mkldnn.matmul.fp32_precision = "bf16"``) and the kernels in
use have them (AVX-512 on a CPU with AVX512-BF16), conv_chain_fwd's two 1x1 products and
linear_fwd's take bf16-rounded inputs and weights with float32 sums. Checked against the float64
composition with the same roundings; without the setting, or under other instruction sets, the
ops keep float32 products (the parity grid covers those)."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from asid_fast import ops
from asid_fast.ops import _registry
from asid_fast.ops._registry import library_op
from helpers import fp32_precision
from op_cases import CASES

pytestmark = pytest.mark.skipif(
    _registry.why_unavailable("cpu", "cpu") is not None,
    reason=str(_registry.why_unavailable("cpu", "cpu")))


def _supported():
    ext = _registry.extension()
    return ext is not None and ext.bf16_products_supported()


needs_bf16 = pytest.mark.skipif(not _supported(),
                                reason="the CPU kernels in use have no bf16 products "
                                       "(AVX-512 kernels on a CPU with AVX512-BF16)")


def matmul_precision(value, scope=None):
    """torch's float32 matmul precision on the CPU inside the block (``scope`` "all": the
    mkldnn-wide one)."""
    return fp32_precision(torch.backends.mkldnn if scope == "all" else torch.backends.mkldnn.matmul,
                          value)


def _bf16(t):
    return t.to(torch.bfloat16).double() if t is not None else None


def _up(t):
    return t.double() if t is not None else None


def _emulated_chain(x, nw, nb, eps, w_in, b_in, gelu_in, w_dw, b_dw, epilogue, w_out):
    """conv_chain_fwd in float64 with both products' inputs and weights rounded to bf16."""
    x = x.double()
    a = F.layer_norm(x, x.shape[-1:], _up(nw), _up(nb), eps) if nw is not None else x
    p = F.linear(_bf16(a), _bf16(w_in), _up(b_in))
    if gelu_in:
        p = F.gelu(p)
    m = p if w_dw is None else ops.depthwise_conv3x3(p, _up(w_dw), _up(b_dw), epilogue=epilogue,
                                                      backend="reference")
    return m if w_out is None else x + F.linear(_bf16(m), _bf16(w_out))


def _emulated_linear(xs, weight, bias, residual, gate):
    """linear_fwd in float64 on bf16-rounded inputs and weights (the reference op)."""
    return _registry.OPS["linear_fwd"].reference([_bf16(x) for x in xs], _bf16(weight),
                                                 _up(bias), _up(residual), _up(gate))


EMULATED = {"conv_chain_fwd": _emulated_chain, "linear_fwd": _emulated_linear}
BF16_CASES = [c for c in CASES if c.op in EMULATED]


def _errors(got, want):
    """(max, median) |got - want| over max |want|."""
    err = (got.double() - want).abs() / want.abs().max()
    return err.max().item(), err.median().item()


@needs_bf16
@pytest.mark.parametrize("scope", ["matmul", "all"])
@pytest.mark.parametrize("case", BF16_CASES, ids=lambda c: c.id)
def test_bf16_products_match_the_rounded_composition(case, scope):
    """The kernel's float32 intermediates and the composition's float64 ones round to bf16
    differently where a value lies within ~1e-7 of a rounding boundary: such rare flips move an
    output by about one bf16 step of one product (6e-6 of the largest output in one case here,
    ~1e-7 elsewhere), hence the loose maximum; the median stays at float32 level (<= 7e-9 here).
    Float32 products miss the rounded composition by 4e-5 to 5e-4 at the median (up to 5e-3 at
    most), so the median bound is what tells them apart."""
    args = case.make(torch.float32, "cpu")
    with matmul_precision("bf16", "all" if scope == "all" else None):
        got = library_op(case.op, "cpu")(*args)
    worst, median = _errors(got, EMULATED[case.op](*args))
    assert worst <= 5e-4 and median <= 1e-6, f"{case.id}: max {worst:.2e}, median {median:.2e}"


@needs_bf16
@pytest.mark.parametrize("case", [next(c for c in BF16_CASES if c.op == op) for op in EMULATED],
                         ids=lambda c: c.id)
def test_float32_products_without_the_setting_or_in_float64(case):
    """"ieee" keeps float32 products (bitwise what the op gives by default), and float64 inputs
    never take bf16 ones."""
    args = case.make(torch.float32, "cpu")
    default = library_op(case.op, "cpu")(*args)
    with matmul_precision("ieee"):
        assert torch.equal(library_op(case.op, "cpu")(*args), default)
    with matmul_precision("bf16"):
        assert not torch.equal(library_op(case.op, "cpu")(*args), default)
        args64 = case.make(torch.float64, "cpu")
        want = _registry.OPS[case.op].reference(*args64)
        assert (library_op(case.op, "cpu")(*args64) - want).abs().max() <= 1e-12 * want.abs().max()


@needs_bf16
def test_other_instruction_sets_keep_float32_products():
    """Forcing the AVX2 kernels turns bf16 products off (they exist in the AVX-512 build only)."""
    ext = _registry.extension()
    case = BF16_CASES[0]
    args = case.make(torch.float32, "cpu")
    try:
        ext.set_cpu_isa("avx2")
        assert not ext.bf16_products_supported()
        plain = library_op(case.op, "cpu")(*args)
        with matmul_precision("bf16"):
            assert torch.equal(library_op(case.op, "cpu")(*args), plain)
    finally:
        ext.set_cpu_isa("auto")
