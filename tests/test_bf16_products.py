"""bf16 products on the CPU (csrc/cpu/bf16_products.h): where torch allows bf16 for float32
matmuls on the CPU (``torch.backends.mkldnn.matmul.fp32_precision = "bf16"``) and the kernels in
use have them (AVX-512 on a CPU with AVX512-BF16), the products of the forward ops (conv_chain's
two 1x1 convolutions, the linear map's, the attention blocks' projections, scores and attn v,
channel attention's Gram matrix and attn v) take bf16-rounded inputs with float32 sums. Checked
against the float64 compositions with the same roundings; without the setting, or under other
instruction sets, the ops keep float32 products (the parity grid covers those)."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from asid_fast import ops
from asid_fast.ops import _registry
from asid_fast.ops._registry import library_op
from asid_fast.reference import functional as R
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


def _emulated_attention(x, nw, nb, eps, w_in, attn, bias, w_out, mode, window, scale):
    """The attention blocks in float64 with every product's inputs rounded to bf16: the
    projections', the scores' (q after the scale), attn v's and the output projection's. attn:
    the shared block's matrices, or None (computed from q and k, and returned too)."""
    x = x.double()
    a = _bf16(F.layer_norm(x, x.shape[-1:], _up(nw), _up(nb), eps))
    h, w = x.shape[1:3]
    tokens = [R.window_partition(F.linear(a, _bf16(wj)), mode, window)
              for wj in w_in.chunk(w_in.shape[0] // x.shape[-1])]
    shared = attn is not None
    if not shared:
        q, k, _ = tokens
        s = _bf16(q * scale) @ _bf16(k).transpose(-2, -1)
        attn = (s if bias is None else s + _up(bias)).softmax(-1)
    o = R.window_merge(_bf16(attn) @ _bf16(tokens[-1]), mode, window, h, w)
    out = x + F.linear(_bf16(o), _bf16(w_out))
    return out if shared else (out, attn)


def _emulated_block(x, nw, nb, eps, w_qkv, bias, w_out, mode, window, scale):
    return _emulated_attention(x, nw, nb, eps, w_qkv, None, bias, w_out, mode, window, scale)


def _emulated_shared_block(x, nw, nb, eps, w_v, attn, w_out, mode, window):
    return _emulated_attention(x, nw, nb, eps, w_v, attn, None, w_out, mode, window, 1.0)


def _emulated_channel(q, k, v, temperature, mode, window):
    """channel_attention_fwd in float64 with both products' inputs rounded to bf16: the Gram
    matrix of the raw q and k (the norms' scales applied after it, from unrounded values) and
    attn v."""
    h, w = q.shape[1:3]
    qt, kt, vt = (R.channel_group_partition(t.double(), mode, window) for t in (q, k, v))
    rq, rk = (1 / t.norm(dim=-2).clamp_min(1e-12) for t in (qt, kt))  # (G, C)
    gram = _bf16(qt).transpose(-2, -1) @ _bf16(kt)
    attn = (gram * rq[..., :, None] * rk[..., None, :] * _up(temperature).reshape(())).softmax(-1)
    out = R.channel_group_merge(_bf16(vt) @ _bf16(attn).transpose(-2, -1), mode, window, h, w)
    return out, attn, rq, rk


EMULATED = {"conv_chain_fwd": _emulated_chain, "linear_fwd": _emulated_linear,
            "channel_attention_fwd": _emulated_channel,
            "attention_block_fwd": _emulated_block,
            "shared_attention_block_fwd": _emulated_shared_block}
BF16_CASES = [c for c in CASES if c.op in EMULATED]


def _first(out):
    """The main output of an op (the first of several)."""
    return out if torch.is_tensor(out) else out[0]


def _errors(got, want):
    """(max, median) |got - want| over max |want|."""
    err = (got.double() - want).abs() / want.abs().max()
    return err.max().item(), err.median().item()


# Largest error allowed where a value's bf16 rounding flips (see below): in the attention ops a
# flip of one q or k value moves a score by one bf16 step of a product, which the softmax passes
# on to a whole row of attn and from there to the output (measured up to 1.2e-3 on 184x320).
MAX_ERROR = {"attention_block_fwd": 3e-3, "shared_attention_block_fwd": 3e-3,
             "channel_attention_fwd": 3e-3}


@needs_bf16
@pytest.mark.parametrize("scope", ["matmul", "all"])
@pytest.mark.parametrize("case", BF16_CASES, ids=lambda c: c.id)
def test_bf16_products_match_the_rounded_composition(case, scope):
    """The kernel's float32 intermediates and the composition's float64 ones round to bf16
    differently where a value lies within ~1e-7 of a rounding boundary: such rare flips move an
    output by about one bf16 step of one product (6e-6 of the largest output in one conv_chain
    case, ~1e-7 elsewhere; more in the attention ops, MAX_ERROR), hence the loose maximum; the
    median stays at float32 level (<= 1.4e-7 here). Float32 products miss the rounded
    composition by 1e-5 to 7e-4 at the median, so the median bound is what tells them apart
    (rq and rk of channel attention take no products: float32 level either way)."""
    args = case.make(torch.float32, "cpu")
    with matmul_precision("bf16", "all" if scope == "all" else None):
        got = library_op(case.op, "cpu")(*args)
    want = EMULATED[case.op](*args)
    for i, (g, w) in enumerate(zip(*((t,) if torch.is_tensor(t) else t for t in (got, want)))):
        worst, median = _errors(g, w)
        assert worst <= MAX_ERROR.get(case.op, 5e-4) and median <= 1e-6, \
            f"{case.id} output {i}: max {worst:.2e}, median {median:.2e}"


@needs_bf16
@pytest.mark.parametrize("case", [next(c for c in BF16_CASES if c.op == op) for op in EMULATED],
                         ids=lambda c: c.id)
def test_float32_products_without_the_setting_or_in_float64(case):
    """"ieee" keeps float32 products (bitwise what the op gives by default), and float64 inputs
    never take bf16 ones."""
    args = case.make(torch.float32, "cpu")
    default = _first(library_op(case.op, "cpu")(*args))
    with matmul_precision("ieee"):
        assert torch.equal(_first(library_op(case.op, "cpu")(*args)), default)
    with matmul_precision("bf16"):
        assert not torch.equal(_first(library_op(case.op, "cpu")(*args)), default)
        args64 = case.make(torch.float64, "cpu")
        want = _first(_registry.OPS[case.op].reference(*args64))
        got = _first(library_op(case.op, "cpu")(*args64))
        assert (got - want).abs().max() <= 1e-12 * want.abs().max()


@needs_bf16
def test_other_instruction_sets_keep_float32_products():
    """Forcing the AVX2 kernels turns bf16 products off (they exist in the AVX-512 build only)."""
    ext = _registry.extension()
    case = BF16_CASES[0]
    args = case.make(torch.float32, "cpu")
    try:
        ext.set_cpu_isa("avx2")
        assert not ext.bf16_products_supported()
        plain = _first(library_op(case.op, "cpu")(*args))
        with matmul_precision("bf16"):
            assert torch.equal(_first(library_op(case.op, "cpu")(*args)), plain)
    finally:
        ext.set_cpu_isa("auto")
