"""What only the CPU kernels of the extension have: one build per instruction set (each is
forced in turn and checked against the reference), results that do not depend on the thread
count (reduced gradients summed per work part in a fixed order), and work queues of several
batches per part. Parity on every op and shape: tests/test_ops_parity.py."""
from __future__ import annotations

import pytest
import torch

from asid_fast.ops import _registry
from asid_fast.ops._registry import library_op
from helpers import TOL, as_tuple, assert_rel
from op_cases import CASES, reference_outputs

pytestmark = pytest.mark.skipif(
    _registry.why_unavailable("cpu", "cpu") is not None,
    reason=str(_registry.why_unavailable("cpu", "cpu")))

# one case of every op, with its reductions (dbias, dtemperature, dweight, dtaps) where it has them
REPRESENTATIVE = {("window_attention_bwd", "d24 meso"), ("window_attention_fwd", "w3 d7 meso"),
                  ("shared_window_attention_bwd", "d12 global"),
                  ("channel_attention_bwd", "c48 cell"), ("channel_attention_fwd", "c48 window"),
                  ("layer_norm_bwd", "c13"), ("depthwise_conv3x3_bwd", "c26 gate strided"),
                  ("depthwise_conv3x3_fwd", "c9 gelu bias strided"),
                  ("conv_chain_fwd", "gated FFN"), ("conv_chain_bwd", "gated FFN 37 rows"),
                  ("linear_fwd", "cat(y, loc)"),
                  ("attention_block_fwd", "w3 d7 meso"),
                  ("shared_attention_block_fwd", "d24 global no bias")}
REPRESENTATIVE_CASES = [c for c in CASES if (c.op, c.label) in REPRESENTATIVE]


def _supported_isas():
    ext = _registry.extension()
    if ext is None:
        return ["baseline"]
    best = ext.set_cpu_isa("auto")
    return ext.cpu_isas[:ext.cpu_isas.index(best) + 1]


@pytest.fixture(params=_supported_isas())
def cpu_isa(request):
    """Forces each instruction set this CPU runs (the others are skipped: not listed)."""
    ext = _registry.extension()
    yield ext.set_cpu_isa(request.param)
    ext.set_cpu_isa("auto")


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("case", REPRESENTATIVE_CASES, ids=lambda c: c.id)
def test_every_instruction_set_matches_reference(cpu_isa, case, dtype):
    args = case.make(dtype, "cpu")
    got = as_tuple(library_op(case.op, "cpu")(*args))
    for i, (g, w) in enumerate(zip(got, as_tuple(reference_outputs(case.op, args)))):
        assert_rel(g, w, TOL[dtype], f"{case.id} ({cpu_isa}) output {i}")


@pytest.mark.parametrize("case", [c for c in REPRESENTATIVE_CASES if c.op.endswith("_bwd")],
                         ids=lambda c: c.id)
def test_results_do_not_depend_on_thread_count(case):
    """Bitwise equal outputs, reduced gradients included, with 1 and 2 threads."""
    args = case.make(torch.float32, "cpu")
    threads = torch.get_num_threads()
    try:
        results = []
        for n in (1, 2):
            torch.set_num_threads(n)
            results.append(as_tuple(library_op(case.op, "cpu")(*args)))
    finally:
        torch.set_num_threads(threads)
    for a, b in zip(*results):
        assert torch.equal(a, b)


def test_chain_rows_kept_from_part_to_part():
    """conv_chain's forward on 2 images of 37 rows: 18 parts of 4-5 rows, dealt in one block per
    worker (1, 2 or 3 threads), so a worker starts most parts with the rows projected at the end
    of its previous part still in its ring, across the images' boundary too, and takes the last
    parts of the others' blocks. The same bits every time, and the reference's values."""
    g = torch.Generator().manual_seed(7)
    x = torch.randn(2, 37, 11, 20, generator=g)
    args = (x, torch.rand(20, generator=g) + 0.5, torch.randn(20, generator=g), 1e-5,
            torch.randn(40, 20, generator=g) * 0.2, torch.randn(40, generator=g), True,
            torch.randn(40, 1, 3, 3, generator=g) * 0.3, torch.randn(40, generator=g), "gate",
            torch.randn(20, 20, generator=g) * 0.2)
    threads = torch.get_num_threads()
    try:
        outs = []
        for n in (1, 2, 3):
            torch.set_num_threads(n)
            outs.append(library_op("conv_chain_fwd", "cpu")(*args))
    finally:
        torch.set_num_threads(threads)
    assert all(torch.equal(outs[0], o) for o in outs[1:])
    assert_rel(outs[0], reference_outputs("conv_chain_fwd", args), 1e-5, "out")


@pytest.mark.parametrize("d", [12, 36])
@pytest.mark.parametrize("mode", ["meso", "global"])
def test_window_kernels_with_several_batches_per_part(mode, d):
    """768 windows: 64 parts of 12, each several batches (d = 12: forward batches of 8, backward
    of 2), so every thread moves from batch to batch and part to part."""
    g = torch.Generator().manual_seed(6)
    x = torch.randn(2, 192, 128, 3 * d, generator=g)
    q, k, v = x.split(d, dim=-1)
    bias, go = torch.randn(64, 64, generator=g), torch.randn(2, 192, 128, d, generator=g)
    fwd = (q, k, v, bias, mode, 8, d ** -0.5)
    out, attn = library_op("window_attention_fwd", "cpu")(*fwd)
    want_out, want_attn = reference_outputs("window_attention_fwd", fwd)
    assert_rel(out, want_out, 1e-5, "out")
    assert_rel(attn, want_attn, 1e-5, "attn")
    bwd = (go, None, q, k, v, attn, bias, mode, 8, d ** -0.5)
    for got, want in zip(library_op("window_attention_bwd", "cpu")(*bwd),
                         reference_outputs("window_attention_bwd", bwd)):
        assert_rel(got, want, 1e-5, "gradient")
    shared = (go, attn, v, mode, 8)
    for got, want in zip(library_op("shared_window_attention_bwd", "cpu")(*shared),
                         reference_outputs("shared_window_attention_bwd", shared)):
        assert_rel(got, want, 1e-5, "shared gradient")
