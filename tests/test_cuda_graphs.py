"""CUDA-graph inference (asid_fast.cuda_graphs): the cache's keys, padding and eviction with a
stand-in capture on the CPU; on a GPU, graph replay and torch.compile's "reduce-overhead" mode
against eager runs of the fused model, and the tools' tiled inference through graphs."""
from __future__ import annotations

import pytest
import torch

from asid_fast.cuda_graphs import Captured, GraphCache, GraphedModel
from helpers import cudnn_without_tf32


class FakeCapture:
    """Records what was captured; replays the model eagerly on the captured batch size."""

    def __init__(self):
        self.shapes = []

    def __call__(self, model, shape, dtype, device, pool):
        self.shapes.append((shape, dtype))

        def run(x):
            assert x.shape == shape and x.dtype == dtype
            return model(x)
        return Captured(run, pool="pool")


def _cache(capacity=4):
    fake = FakeCapture()
    return GraphCache(lambda x: x * 2 + 1, capacity, fake), fake


def test_one_capture_per_shape_and_dtype():
    cache, fake = _cache()
    x = torch.randn(2, 3, 8, 8)
    assert torch.equal(cache(x), x * 2 + 1)
    assert torch.equal(cache(x + 1), (x + 1) * 2 + 1)
    cache(x.double())
    cache(torch.randn(2, 3, 8, 16))
    assert fake.shapes == [((2, 3, 8, 8), torch.float32), ((2, 3, 8, 8), torch.float64),
                           ((2, 3, 8, 16), torch.float32)]


def test_smaller_batch_pads_to_a_captured_one():
    cache, fake = _cache()
    x = torch.randn(4, 3, 8, 8)
    cache(x)
    got = cache(x[:3])
    assert got.shape == (3, 3, 8, 8) and torch.equal(got, x[:3] * 2 + 1)
    cache(torch.randn(6, 3, 8, 8))  # larger: a new graph
    cache(torch.randn(5, 3, 8, 8))  # pads to 6, the smallest captured batch that holds it
    assert [s for s, _ in fake.shapes] == [(4, 3, 8, 8), (6, 3, 8, 8)]


def test_autocast_state_and_matmul_precision_are_part_of_the_key():
    cache, fake = _cache()
    x = torch.randn(1, 3, 8, 8)
    cache(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        cache(x)
    previous = torch.backends.cuda.matmul.fp32_precision
    torch.backends.cuda.matmul.fp32_precision = "tf32"
    try:
        cache(x)
    finally:
        torch.backends.cuda.matmul.fp32_precision = previous
    cache(x)
    assert len(fake.shapes) == 3
    assert {(k.autocast[0], k.fp32_precision) for k, _ in cache.keys()} == {
        (False, previous), (True, previous), (False, "tf32")}


def test_least_recently_used_graph_is_dropped():
    cache, fake = _cache(capacity=2)
    a, b, c = (torch.randn(1, 3, 8, s) for s in (8, 16, 24))
    cache(a)
    cache(b)
    cache(a)  # b is now the least recently used
    cache(c)
    assert [k.image for k, _ in cache.keys()] == [(3, 8, 8), (3, 8, 24)]
    cache(b)
    assert len(fake.shapes) == 4


def test_graphs_share_the_first_graphs_pool():
    pools = []

    def capture(model, shape, dtype, device, pool):
        pools.append(pool)
        return Captured(model, pool=f"pool of {shape}")
    cache = GraphCache(lambda x: x, 4, capture)
    cache(torch.randn(1, 2))
    cache(torch.randn(1, 3))
    assert pools == [None, "pool of (1, 2)"]


def test_bad_inputs_are_refused_clearly():
    with pytest.raises(ValueError, match="must be a CUDA tensor, got cpu"):
        GraphedModel(torch.nn.Identity())(torch.randn(1, 3, 8, 8))
    with pytest.raises(ValueError, match="capacity must be >= 1"):
        GraphCache(torch.nn.Identity(), 0)
    cache, _ = _cache()
    with pytest.raises(ValueError, match="at least one input"):
        cache(torch.randn(0, 3, 8, 8))


# ---- on a GPU ---------------------------------------------------------------------------------

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def _fused_model(dtype=torch.float32, scale=4):
    from test_model_parity import fused_twin, randomized_reference

    return fused_twin(randomized_reference(scale, "asid", dtype), "auto").cuda().eval()


def _rel(a, b):
    return ((a.double() - b.double()).abs().max() / b.double().abs().max()).item()


@pytest.mark.cuda
@needs_cuda
@pytest.mark.parametrize("autocast", [None, torch.bfloat16])
def test_graph_replay_matches_eager(autocast):
    """Replays of one capture on new values, and a padded smaller batch, equal eager runs within
    float32 rounding: cuDNN may pick another algorithm inside the capture (measured 1.0e-6 on an
    H200), hence 1e-5. cuDNN's TF32 is off: with it on (torch's default) the two were 3.5e-4
    apart."""
    model = _fused_model()
    runner = GraphedModel(model)
    with cudnn_without_tf32(), \
            torch.autocast("cuda", dtype=autocast or torch.float32, enabled=autocast is not None):
        for batch in (3, 3, 2):
            x = torch.rand(batch, 3, 24, 40, device="cuda") * 2 - 1
            with torch.no_grad():
                want = model(x)
            got = runner(x)
            assert got.dtype == want.dtype and got.shape == want.shape
            assert _rel(got, want) <= 1e-5
    assert len(runner.cache.keys()) == 1


@pytest.mark.cuda
@needs_cuda
def test_reduce_overhead_compile_of_the_fused_model():
    """torch.compile(mode="reduce-overhead", fullgraph=True): one graph, CUDA graphs replayed,
    output within 1e-4 of eager (inductor fuses the plain-PyTorch parts in another order).
    cuDNN's TF32 is off: with it on, the two were 2.3e-4 apart on an H200."""
    torch._dynamo.reset()
    model = _fused_model()
    compiled = torch.compile(model, mode="reduce-overhead", fullgraph=True)
    x = torch.rand(1, 3, 24, 40, device="cuda") * 2 - 1
    with cudnn_without_tf32(), torch.no_grad():
        want = model(x)
        for _ in range(3):  # cudagraph trees record on the second run, replay from the third
            got = compiled(x).clone()
    assert _rel(got, want) <= 1e-4


@pytest.mark.cuda
@needs_cuda
def test_tiled_upscale_through_graphs_matches_eager():
    from asid_fast.tools.tiling import tiled_forward
    from asid_fast.tools.upscale import model_fn

    model = _fused_model(scale=2)
    x = torch.rand(1, 3, 70, 90, device="cuda")
    with torch.inference_mode():
        want = tiled_forward(model_fn(model, torch.float32), x, 2, tile=32, overlap=8, batch=4)
        got = tiled_forward(model_fn(model, torch.float32, replay=True), x, 2, tile=32,
                            overlap=8, batch=4)
    assert _rel(got, want) <= 1e-6
