"""The CPU output cache (asid_fast.ops.output_cache_bytes and friends): freed op outputs are kept
by size and handed to the next output of that size, least recently freed dropped first past the
limit, the outputs stay ordinary resizable tensors, and a model computes the same with and
without the cache."""
from __future__ import annotations

import pytest
import torch

from asid_fast import ops
from asid_fast.model import ASID
from asid_fast.ops import _registry

pytestmark = pytest.mark.skipif(
    _registry.why_unavailable("cpu", "cpu") is not None,
    reason=str(_registry.why_unavailable("cpu", "cpu")))

MiB = 1 << 20


@pytest.fixture(autouse=True)
def _fresh_cache():
    limit = _registry.extension().output_cache_limit()
    ops.empty_output_cache()
    yield
    ops.set_output_cache_limit(limit)
    ops.empty_output_cache()


def _output(pixels_w, channels=16):
    """A linear op output of 1 x 8 x pixels_w x channels float32 values."""
    x = torch.randn(1, 8, pixels_w, channels)
    return ops.linear([x], torch.randn(channels, channels), None, backend="cpu")


def test_freed_output_is_reused_for_the_next_of_its_size():
    a = _output(64)
    ptr, nbytes = a.data_ptr(), a.numel() * a.element_size()
    assert ops.output_cache_bytes() == 0
    del a
    assert ops.output_cache_bytes() == nbytes
    b = _output(64)
    assert b.data_ptr() == ptr
    assert ops.output_cache_bytes() == 0
    c = _output(32)  # another size: fresh memory
    assert c.data_ptr() != ptr


def test_least_recently_freed_go_first_past_the_limit():
    ops.set_output_cache_limit(3 * MiB)
    a, b = _output(2048), _output(4096)  # 1 MiB and 2 MiB
    del a, b
    assert ops.output_cache_bytes() == 3 * MiB
    c = _output(1024)  # 0.5 MiB, freed last: over the limit, so the oldest (a's) goes
    del c
    assert ops.output_cache_bytes() == 2 * MiB + MiB // 2
    ops.set_output_cache_limit(MiB)  # keeps c's block only
    assert ops.output_cache_bytes() == MiB // 2
    ops.set_output_cache_limit(0)
    assert ops.output_cache_bytes() == 0
    _output(64)  # freed at once
    assert ops.output_cache_bytes() == 0  # limit 0 keeps nothing


def test_empty_output_cache_and_bad_limits():
    _output(64)  # freed at once
    assert ops.output_cache_bytes() > 0
    ops.empty_output_cache()
    assert ops.output_cache_bytes() == 0
    for bad in (-1, 1.5, True, "1"):
        with pytest.raises(ValueError, match="limit_bytes"):
            ops.set_output_cache_limit(bad)


def test_outputs_are_ordinary_tensors():
    a = _output(64)
    expected = a.clone()
    a.resize_(4, 8, 64, 16)  # storage grows through the cache's allocator
    assert torch.equal(a[:1], expected)
    a[1:].zero_()  # the grown part is uninitialised memory (a reused block may hold NaN bits)
    a.add_(1)
    assert a.is_contiguous() and a.sum().isfinite()


def test_model_computes_the_same_with_and_without_the_cache():
    torch.manual_seed(0)
    model = ASID(2, "asid", backend="cpu").eval()
    x = torch.rand(2, 3, 20, 27)
    with torch.no_grad():
        ops.set_output_cache_limit(0)
        expected = model(x)
        ops.set_output_cache_limit(256 * MiB)
        model(x)  # fills the cache with this call's blocks
        assert ops.output_cache_bytes() > 0
        got = model(x)  # runs on reused blocks
    assert torch.equal(got, expected)


def test_memory_profiles_count_the_outputs():
    from asid_fast.tools.bench_timing import peak_memory_mb

    x, w = torch.randn(1, 8, 4096, 16), torch.randn(16, 16)  # made outside the profiled call
    nbytes = x.numel() * x.element_size()  # the output's size; everything else is tiny
    for limit in (0, 256 * MiB):  # a fresh block, then a cached one
        ops.set_output_cache_limit(limit)
        ops.linear([x], w, None, backend="cpu")
        peak = peak_memory_mb(lambda: ops.linear([x], w, None, backend="cpu"), "cpu") * MiB
        assert nbytes <= peak < 2 * nbytes
