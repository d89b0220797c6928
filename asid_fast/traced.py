"""CPU inference without Python between the ops: a model's forward traced once per input shape.

:class:`TracedModel` wraps an inference model as a callable ``(B, C, H, W) CPU tensor ->
output`` that runs a ``torch.jit.trace`` of the model's forward, made on a key's first call (or
after ``after`` calls, below; the key: shape, dtype and what else changes the ops, as
:class:`asid_fast.cuda_graphs.GraphKey`) and replayed after that; smaller batches are padded to
a traced one, at most ``capacity`` traces are kept (:class:`asid_fast.cuda_graphs.GraphCache`).
A trace replays the ops the Python forward chose for that shape (backends, paddings, window
sizes), without the Python between them (the model's code, torch's functional wrappers, the
registry's dispatch, the ops' input checks), which on a 2-core CPU is a fifth of a 64x64 tile's
forward. What it returns is what the model returns for the same input. A call made in inference
mode (as ``asid-fast upscale`` and ``eval`` make theirs) replays in it: the custom ops then skip
their autograd layer, a Python call per op.

Tracing ASID takes about a second on a 2-core CPU, the time of some 100 forwards' savings at
64x64, so ``after`` lets the first calls of each key run the model itself and traces only a key
that keeps coming (the tiles of a large image or of a folder); with the same batch, traced and
eager calls give the same bits, so where the switch happens does not change a result. Traces run
without TorchScript's graph optimisation, which costs more on the first calls than it saves here.

A trace may keep values it read from the parameters as constants: after loading other weights
or moving the model, call :meth:`TracedModel.reset`.
"""
from __future__ import annotations

import warnings
from collections import Counter
from typing import Callable

import torch

from .cuda_graphs import Captured, GraphCache, graph_key


def trace(model: Callable, shape: tuple, dtype: torch.dtype, device: torch.device,
          pool=None) -> Captured:
    """``model``'s forward traced on an input of ``shape`` (values in [-1, 1)), or ``model``
    itself with a warning where torch cannot trace it; ``pool`` is unused (a
    :class:`GraphCache` capture function's signature)."""
    example = torch.rand(shape, dtype=dtype, device=device) * 2 - 1
    try:
        with warnings.catch_warnings():
            # the shape checks of a traced forward read sizes as Python numbers, which is right
            # for the one shape a trace serves; torch.jit.trace itself warns that it is deprecated
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            traced = torch.jit.trace(model, example, check_trace=False)
    except Exception as e:  # a trace only saves time: without one, the model runs as it is
        warnings.warn(f"asid_fast: could not trace the model ({type(e).__name__}: {e}); "
                      "running it without a trace", RuntimeWarning, stacklevel=2)
        return Captured(model, None)

    def run(x):
        with torch.jit.optimized_execution(False):
            return traced(x)
    return Captured(run, None)


class TracedModel:
    """``model`` (an inference module on the CPU) as a callable running traces of its forward,
    at most ``capacity`` of them, each made after ``after`` calls with its key and batch have run
    the model itself (see the module docstring). Calls run without autograd; inputs must be CPU
    tensors."""

    def __init__(self, model: Callable, capacity: int = 4, after: int = 0):
        if after < 0:
            raise ValueError(f"after must be >= 0, got {after}")
        self.model, self.after = model, after
        self.cache = GraphCache(model, capacity, capture_fn=trace, replay_in_inference_mode=True)
        self._calls: Counter = Counter()  # (GraphKey, batch) -> eager calls so far

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor) or x.device.type != "cpu":
            where = x.device if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"TracedModel runs CPU traces: the input must be a CPU tensor, got "
                             f"{where}; use GraphedModel on CUDA")
        slot = (graph_key(x), x.shape[0])
        if self._calls[slot] < self.after:
            self._calls[slot] += 1
            with torch.no_grad():
                return self.model(x)
        return self.cache(x)

    def reset(self) -> None:
        """Drop every trace and call count (after the model's weights were replaced or it was
        moved)."""
        self.cache.clear()
        self._calls.clear()
