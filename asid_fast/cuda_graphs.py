"""CUDA-graph inference: a model's forward captured once per input shape and replayed.

:class:`GraphedModel` wraps an inference model (the fused ``asid_fast.ASID`` or any module whose
forward is capturable: no host synchronisation, no allocation whose size depends on data) as a
callable ``(B, C, H, W) CUDA tensor -> output``. The first call with a new key captures a graph:
the forward runs twice on a side stream first (Triton's first-call compiles, the lazy attach of
the Triton kernels, cuBLAS/cuDNN set-up happen there, outside the capture), then once under
capture. Later calls copy the input into the graph's static input, replay, and return a copy of
the static output.

Key: the input's shape, dtype and device, plus what changes the captured kernels: the autocast
state of the input's device type and the float32 matmul precision (TF32 or IEEE). A batch smaller
than one already captured for the same image shape and key is padded (its last image repeated)
and replays that graph, so tiled inference with a short last batch captures once. At most
``capacity`` graphs are kept, least recently used dropped first; they share one memory pool
(safe: each output is copied out right after its replay, before any other graph runs).

The graphs read the model's parameters in place: weights loaded later with ``load_state_dict``
are seen, but after moving or casting the model (new parameter tensors) call :meth:`reset`.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Callable, NamedTuple

import torch

WARMUP_CALLS = 2


class GraphKey(NamedTuple):
    """What a captured graph is valid for; ``batch`` apart so smaller batches can be padded."""
    image: tuple  # the input's shape without the batch axis
    dtype: torch.dtype
    device: torch.device
    autocast: tuple  # (enabled, dtype) of autocast for the device type
    fp32_precision: str  # torch.backends.cuda.matmul.fp32_precision


class Captured(NamedTuple):
    """A captured forward: ``run(x)`` fills the static input with ``x`` (of the captured batch),
    replays and returns a copy of the output; ``pool`` is the graph's memory pool."""
    run: Callable[[torch.Tensor], torch.Tensor]
    pool: object


def graph_key(x: torch.Tensor) -> GraphKey:
    device_type = x.device.type
    return GraphKey(tuple(x.shape[1:]), x.dtype, x.device,
                    (torch.is_autocast_enabled(device_type), torch.get_autocast_dtype(device_type)),
                    torch.backends.cuda.matmul.fp32_precision)


def capture(model: Callable, shape: tuple, dtype: torch.dtype, device: torch.device,
            pool) -> Captured:
    """Capture ``model`` on a static input of ``shape`` (values in [-1, 1) for the warm-up)
    into memory ``pool`` (None: a new one). Under autocast, warm-up and capture run with
    autocast's weight-cast cache off: a cached cast made outside the graph would be freed when
    the caller's autocast region ends while the graph still reads it."""
    static_in = torch.rand(shape, dtype=dtype, device=device) * 2 - 1
    autocast = torch.is_autocast_enabled(device.type)
    cast_dtype = torch.get_autocast_dtype(device.type)
    side = torch.cuda.Stream(device)
    side.wait_stream(torch.cuda.current_stream(device))
    with torch.autocast(device.type, cast_dtype, enabled=autocast, cache_enabled=False):
        with torch.cuda.stream(side):
            for _ in range(WARMUP_CALLS):
                model(static_in)
        torch.cuda.current_stream(device).wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, pool=pool):
            static_out = model(static_in)

    def run(x):
        static_in.copy_(x)
        graph.replay()
        return static_out.clone()
    return Captured(run, graph.pool())


class GraphCache:
    """Captured forwards of ``model`` by (:class:`GraphKey`, batch), at most ``capacity``, least
    recently used dropped first; a smaller batch pads to a captured one. ``capture_fn(model,
    shape, dtype, device, pool) -> Captured`` makes one (:func:`capture`). Forwards are
    captured outside inference mode; ``replay_in_inference_mode``: a call made in inference mode
    replays in it too (no autograd bookkeeping per op; the output is then an inference tensor, as
    the model's own would be), else replays run outside it. Device-neutral: the CUDA check is
    :class:`GraphedModel`'s."""

    def __init__(self, model: Callable, capacity: int = 4, capture_fn=capture,
                 replay_in_inference_mode: bool = False):
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        self.model, self.capacity = model, capacity
        self._capture = capture_fn
        self._replay_in_inference_mode = replay_in_inference_mode
        self._graphs: OrderedDict = OrderedDict()  # (GraphKey, batch) -> Captured
        self._pool = None

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() < 1 or x.shape[0] < 1:
            raise ValueError(f"expected a batch of at least one input, got shape {tuple(x.shape)}")
        key, n = graph_key(x), x.shape[0]
        batch = self._batch_for(key, n)
        if batch is None:
            batch = n
            self._add((key, batch), self._new_graph(key, batch))
        self._graphs.move_to_end((key, batch))
        inference = self._replay_in_inference_mode and torch.is_inference_mode_enabled()
        with torch.inference_mode(inference), torch.no_grad():
            if batch > n:  # pad with copies of the last image
                x = torch.cat([x, x[-1:].expand(batch - n, *x.shape[1:])])
            out = self._graphs[key, batch].run(x)
        return out if batch == n else out[:n]

    def keys(self) -> list[tuple[GraphKey, int]]:
        """The cached (key, batch) pairs, least recently used first."""
        return list(self._graphs)

    def clear(self) -> None:
        self._graphs.clear()
        self._pool = None

    def _batch_for(self, key: GraphKey, batch: int) -> int | None:
        """The smallest captured batch >= ``batch`` for ``key``, or None."""
        batches = [b for k, b in self._graphs if k == key and b >= batch]
        return min(batches) if batches else None

    def _new_graph(self, key: GraphKey, batch: int) -> Captured:
        with torch.inference_mode(False), torch.no_grad():
            captured = self._capture(self.model, (batch, *key.image), key.dtype, key.device,
                                     self._pool)
        self._pool = captured.pool
        return captured

    def _add(self, slot, captured: Captured) -> None:
        self._graphs[slot] = captured
        while len(self._graphs) > self.capacity:
            self._graphs.popitem(last=False)


class GraphedModel:
    """``model`` (an inference module on a CUDA device) as a callable replaying CUDA graphs, at
    most ``capacity`` of them (see the module docstring). Calls run without autograd; inputs
    must be CUDA tensors."""

    def __init__(self, model: Callable, capacity: int = 4):
        self.cache = GraphCache(model, capacity)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor) or x.device.type != "cuda":
            where = x.device if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"GraphedModel replays CUDA graphs: the input must be a CUDA tensor, "
                             f"got {where}; call the model itself on other devices")
        return self.cache(x)

    def capture(self, shape: tuple, dtype: torch.dtype = torch.float32, device="cuda") -> None:
        """Capture the graph of inputs of ``shape`` and ``dtype`` now (under the current
        autocast state) instead of on the first call."""
        self(torch.zeros(shape, dtype=dtype, device=device))

    def reset(self) -> None:
        """Drop every graph (after the model's parameters were replaced, e.g. by ``.to()``)."""
        self.cache.clear()


def graphed(model: Callable, shape: tuple | None = None, dtype: torch.dtype = torch.float32,
            capacity: int = 4) -> GraphedModel:
    """:class:`GraphedModel` of ``model`` on its device, with the graph of inputs of ``shape``
    and ``dtype`` captured now when ``shape`` is given."""
    runner = GraphedModel(model, capacity)
    if shape is not None:
        device = next((p.device for p in getattr(model, "parameters", lambda: ())()),
                      torch.device("cuda"))
        runner.capture(shape, dtype, device)
    return runner
