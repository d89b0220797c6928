"""Traced CPU inference (asid_fast.traced): a trace replays the fused model's forward with the
same results, once per key, padded batches included; the tools trace when tiling on the CPU."""
from __future__ import annotations

import pytest
import torch

from asid_fast import traced
from asid_fast.tools import upscale
from asid_fast.tools.tiling import tiled_forward
from asid_fast.tools.upscale import model_fn, replays_captures
from asid_fast.traced import TracedModel
from test_model_parity import fused_twin, randomized_reference


@pytest.fixture(scope="module")
def model():
    return fused_twin(randomized_reference(2, "asid", torch.float32), "auto").eval()


@pytest.fixture
def trace_calls(monkeypatch):
    """The input shapes traced from now on (traced.trace still does the tracing)."""
    calls, trace = [], traced.trace

    def counting(*args):
        calls.append(args[1])
        return trace(*args)
    monkeypatch.setattr(traced, "trace", counting)
    return calls


def test_traces_equal_eager_runs(model):
    """The same ops on the same input: the same bits. A smaller batch is padded to the traced one
    and replays that trace; the padded images change the batch the ops see, and torch's small
    matrix products (SE's MLP on a (batch, 48) mean) round differently for another number of rows
    (1.3e-6 measured between 1 and 16 rows), hence 1e-5 for that case."""
    runner = TracedModel(model)
    with torch.no_grad():
        for batch in (3, 3):
            x = torch.rand(batch, 3, 13, 21) * 2 - 1
            assert torch.equal(runner(x), model(x))
        x = torch.rand(2, 3, 13, 21) * 2 - 1
        want, got = model(x), runner(x)
    assert got.shape == want.shape
    assert ((got - want).abs().max() / want.abs().max()).item() <= 1e-5
    assert len(runner.cache.keys()) == 1
    runner(torch.rand(1, 3, 16, 16))
    assert len(runner.cache.keys()) == 2
    runner.reset()
    assert runner.cache.keys() == []


def test_replays_run_in_the_callers_inference_mode(model):
    """Called in inference mode (as the tools call), a replay runs in it (no autograd layer per
    op): an inference tensor, as the model's own output there; called outside it, a normal tensor.
    The same bits either way."""
    runner = TracedModel(model)
    x = torch.rand(1, 3, 13, 21)
    with torch.inference_mode():
        want = model(x)
        runner(x)  # the trace
        got = runner(x)
    assert got.is_inference() and torch.equal(got, want)
    with torch.no_grad():
        got = runner(x)
    assert not got.is_inference() and torch.equal(got, want)


def test_traced_model_refuses_other_inputs(model):
    runner = TracedModel(model)
    with pytest.raises(ValueError, match="must be a CPU tensor, got list"):
        runner([1.0])
    with pytest.raises(ValueError, match="must be a CPU tensor, got meta"):
        runner(torch.empty(1, 3, 8, 8, device="meta"))


def test_trace_after_some_eager_calls(model, trace_calls):
    """With ``after``, each (key, batch) runs the model itself that many times, then traces."""
    runner = TracedModel(model, after=2)
    x = torch.rand(2, 3, 13, 21)
    with torch.no_grad():
        want = model(x)
        for expected in ([], [], [(2, 3, 13, 21)], [(2, 3, 13, 21)]):
            assert torch.equal(runner(x), want)
            assert trace_calls == expected
        runner(x[:1])  # another batch: counted apart, eager
    assert trace_calls == [(2, 3, 13, 21)]
    runner.reset()
    assert runner.cache.keys() == [] and not runner._calls
    with pytest.raises(ValueError, match="after must be >= 0"):
        TracedModel(model, after=-1)


def test_a_model_torch_cannot_trace_runs_as_it_is(model, monkeypatch):
    def fails(*args, **kwargs):
        raise RuntimeError("no tracing here")
    monkeypatch.setattr(torch.jit, "trace", fails)
    x = torch.rand(1, 3, 13, 21)
    with pytest.warns(RuntimeWarning, match="could not trace the model .RuntimeError: no tracing"):
        got = TracedModel(model)(x)
    with torch.no_grad():
        assert torch.equal(got, model(x))


def test_tools_replay_captures_when_tiling():
    assert replays_captures(torch.device("cuda"), 64)
    assert replays_captures(torch.device("cpu"), 64)
    assert not replays_captures(torch.device("cpu"), 0)
    assert not replays_captures(torch.device("cuda"), 0)
    assert not replays_captures(torch.device("meta"), 64)


def test_tiled_upscale_traces_once(model, trace_calls, monkeypatch):
    """Every tile has one shape: one trace for the whole image, made after the tools' first
    eager forwards (TRACE_AFTER, 2 here for 3 batches of 4 tiles), and the same output as the
    eager tile loop."""
    monkeypatch.setattr(upscale, "TRACE_AFTER", 2)
    x = torch.rand(1, 3, 40, 50)
    with torch.inference_mode():
        want = tiled_forward(model_fn(model, torch.float32), x, 2, tile=16, overlap=4, batch=4)
        got = tiled_forward(model_fn(model, torch.float32, replay=True), x, 2, tile=16,
                            overlap=4, batch=4)
    assert trace_calls == [(4, 3, 16, 16)]
    assert torch.equal(got, want)
