"""Settings of the pytest-benchmark suites in bench/ (run them with
``pytest bench/ --benchmark-only``; they are not part of the CI test run).

They time the candidates of ``asid-fast bench`` (:mod:`asid_fast.tools.bench_cases`) the way its
harness samples them (:func:`asid_fast.tools.bench_timing.pedantic_args`), one candidate per
test: use them to follow one candidate across commits (``--benchmark-autosave``,
``--benchmark-compare``). Speed ratios between candidates come from ``asid-fast bench``, which
interleaves them in one process.

Environment: ``ASID_BENCH_DEVICE`` (auto | cpu | cuda, default auto), ``ASID_BENCH_DTYPE``
(fp32 | bf16 | fp16, default fp32), ``ASID_BENCH_THREADS`` (CPU threads, default 2). On CPU start
Python with ``OMP_WAIT_POLICY=PASSIVE`` (it is read when torch loads).
"""
import os
import warnings

import pytest
import torch

from asid_fast.tools import runtime
from asid_fast.tools.bench_timing import pedantic_args, settings


@pytest.fixture(scope="session")
def device():
    dev = runtime.resolve_device(os.environ.get("ASID_BENCH_DEVICE", "auto"))
    if dev.type == "cpu":
        torch.set_num_threads(int(os.environ.get("ASID_BENCH_THREADS", "2")))
        if os.environ.get("OMP_WAIT_POLICY") != "PASSIVE":
            warnings.warn("start Python with OMP_WAIT_POLICY=PASSIVE for stable CPU timings")
    return dev


@pytest.fixture(scope="session")
def dtype(device):
    return runtime.resolve_dtype(os.environ.get("ASID_BENCH_DTYPE", "fp32"), device)


@pytest.fixture
def run_case(benchmark, device):
    """run_case(case, label): time candidate ``label`` of ``case`` with the harness's settings
    for the case's kind (its first call, e.g. compilation, is not timed)."""
    def run(case, label):
        kind = "model" if case.kind == "model" else "op"
        args = pedantic_args(case.candidates[label], device, settings(device, kind))
        benchmark.group = f"{case.name} {case.mode} {case.shape}"
        benchmark.extra_info.update(flops=case.flops, bytes=case.bytes, shape=case.shape)
        benchmark.pedantic(**args)
    return run
