"""The timing harness of every benchmark of this project: ``asid-fast bench``, the scripts in
``bench/`` (presets of it) and the pytest-benchmark suites in ``bench/`` (through
:func:`pedantic_args`).

Timing: every candidate is warmed up, then timed in interleaved rounds (round r times each
candidate once, in an order rotated every round) so that drifts in clock speed or machine load hit
all candidates alike; a :class:`Timing` gives the median and the best (min) of the rounds. On CPU a
sample is ``number`` back-to-back calls timed with ``time.perf_counter`` (``number`` chosen so
that a sample lasts at least ``min_sample_s``); on CUDA a sample is one call between two CUDA
events, after the L2 cache has been flushed by overwriting a 256 MiB buffer, and followed by
``torch.cuda.synchronize``. :data:`DEFAULTS` gives the warm-up, rounds and minimum sample length
per device type and kind of case.

Peak memory (``peak_mem_mb``) is measured in one separate call: the peak of allocations made
during the call above what was allocated before it (so inputs are excluded; outputs, tensors
saved for backward and workspace are included). CUDA: ``torch.cuda.max_memory_allocated``.
CPU: the running total of the allocation and free events that ``torch.profiler`` records with
``profile_memory=True`` (torch's CPU allocator only: memory a library allocates by itself, such as
onnxruntime's, is not seen; ``tracemalloc`` would see none of torch's allocations).
"""
from __future__ import annotations

import os
import statistics
import time
from dataclasses import dataclass

import torch

L2_FLUSH_BYTES = 256 * 2**20


@dataclass(frozen=True)
class Settings:
    """Warm-up calls, timed rounds and minimum CPU sample length (s) of one case."""

    warmup: int
    repeats: int
    min_sample_s: float


# per (device type, kind of case): "op" cases take milliseconds, "model" cases up to seconds
DEFAULTS = {
    ("cpu", "op"): Settings(2, 7, 0.05), ("cpu", "model"): Settings(1, 3, 0.0),
    ("cuda", "op"): Settings(5, 25, 0.0), ("cuda", "model"): Settings(3, 10, 0.0),
}


def settings(device, kind: str, warmup=None, repeats=None) -> Settings:
    """:data:`DEFAULTS` of ``kind`` on ``device``, with ``warmup`` / ``repeats`` when given."""
    base = DEFAULTS[(torch.device(device).type, kind)]
    return Settings(base.warmup if warmup is None else warmup,
                    base.repeats if repeats is None else repeats, base.min_sample_s)


@dataclass
class Timing:
    """Per-call wall times of one candidate, in milliseconds, one per round."""

    samples_ms: list

    @property
    def median(self) -> float:
        return statistics.median(self.samples_ms)

    @property
    def min(self) -> float:
        return min(self.samples_ms)

    @property
    def max(self) -> float:
        return max(self.samples_ms)


def synchronize(device) -> None:
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class _CpuSampler:
    def __init__(self, min_sample_s: float):
        self.min_sample_s = min_sample_s
        self.number: dict = {}

    def calibrate(self, key, fn) -> int:
        t0 = time.perf_counter()
        fn()
        once = time.perf_counter() - t0
        self.number[key] = max(1, int(self.min_sample_s / max(once, 1e-9)))
        return self.number[key]

    def prepare(self) -> None:
        pass

    def sample_ms(self, key, fn) -> float:
        n = self.number[key]
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        return (time.perf_counter() - t0) * 1e3 / n


class _CudaSampler:
    def __init__(self, device: torch.device):
        self.device = device
        self.flush = torch.empty(L2_FLUSH_BYTES, dtype=torch.uint8, device=device)
        self.start = torch.cuda.Event(enable_timing=True)
        self.end = torch.cuda.Event(enable_timing=True)

    def calibrate(self, key, fn) -> int:
        return 1

    def prepare(self) -> None:
        """Flush the L2 cache (every sample starts cold, as a call in a model does)."""
        self.flush.zero_()

    def sample_ms(self, key, fn) -> float:
        self.prepare()
        self.start.record()
        fn()
        self.end.record()
        torch.cuda.synchronize(self.device)
        return self.start.elapsed_time(self.end)


def _sampler(device: torch.device, min_sample_s: float):
    return _CudaSampler(device) if device.type == "cuda" else _CpuSampler(min_sample_s)


def time_interleaved(fns: dict, device, warmup: int = 3, repeats: int = 10,
                     min_sample_s: float = 0.05) -> dict:
    """Time each callable of ``fns`` ({name: fn}); returns {name: Timing}."""
    device = torch.device(device)
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    sampler = _sampler(device, min_sample_s)
    names = list(fns)
    for name in names:
        for _ in range(warmup):
            fns[name]()
        synchronize(device)
        sampler.calibrate(name, fns[name])
    samples = {name: [] for name in names}
    for r in range(repeats):
        shift = r % len(names)
        for name in names[shift:] + names[:shift]:
            samples[name].append(sampler.sample_ms(name, fns[name]))
    return {name: Timing(samples[name]) for name in names}


def pedantic_args(fn, device, setting: Settings) -> dict:
    """Keyword arguments of pytest-benchmark's ``benchmark.pedantic`` that time ``fn`` as
    :func:`time_interleaved` samples it: on CPU ``iterations`` calls per round (calibrated to
    ``min_sample_s``), on CUDA one call per round after an L2 flush (``setup``), ended by a
    synchronisation; ``setting.warmup`` warm-up rounds and ``setting.repeats`` rounds. (pytest-
    benchmark times one candidate at a time with its own timer; ratios come from the CLI.)"""
    device = torch.device(device)
    sampler = _sampler(device, setting.min_sample_s)

    def target():
        fn()
        synchronize(device)

    fn()  # the first call (compilation, lazy initialisation) is not a warm-up round
    iterations = sampler.calibrate(fn, target)
    setup = sampler.prepare if device.type == "cuda" else None
    return {"target": target, "setup": setup, "rounds": setting.repeats,
            "iterations": iterations, "warmup_rounds": setting.warmup}


def _cpu_peak_bytes(fn) -> int:
    from torch.profiler import ProfilerActivity, profile

    # kineto logs every profiler start and stop on stderr below level 6
    os.environ.setdefault("KINETO_LOG_LEVEL", "6")
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    events = [e for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"]
    total = peak = 0
    for e in sorted(events, key=lambda e: e.start_ns()):
        total += e.nbytes()
        peak = max(peak, total)
    return peak


def _cuda_peak_bytes(fn, device) -> int:
    torch.cuda.synchronize(device)
    before = torch.cuda.memory_allocated(device)
    torch.cuda.reset_peak_memory_stats(device)
    fn()
    torch.cuda.synchronize(device)
    return torch.cuda.max_memory_allocated(device) - before


def peak_memory_mb(fn, device):
    """Peak extra memory of one call of ``fn`` in MiB (see module docstring); None if the
    profiler's memory events are not available in this torch build."""
    device = torch.device(device)
    if device.type == "cuda":
        return _cuda_peak_bytes(fn, device) / 2**20
    try:
        return _cpu_peak_bytes(fn) / 2**20
    except (AttributeError, RuntimeError):
        return None
