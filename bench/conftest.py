"""Settings of the pytest-benchmark suites in bench/ (run them with
``pytest bench/ --benchmark-only``; they are not part of the CI test run).

Environment: ``ASID_BENCH_DEVICE`` (auto | cpu | cuda, default auto), ``ASID_BENCH_DTYPE``
(fp32 | bf16 | fp16, default fp32), ``ASID_BENCH_THREADS`` (CPU threads, default 2). On CPU start
Python with ``OMP_WAIT_POLICY=PASSIVE`` (it is read when torch loads). These suites time one
candidate at a time; speed ratios between backends come from ``asid-fast bench``, which
interleaves them.
"""
import os
import warnings

import pytest
import torch

from asid_fast.tools import runtime


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


@pytest.fixture(scope="session")
def timed(device):
    """Wraps a callable so that it ends with a device synchronisation (on CUDA), so that the
    benchmark sees its whole cost."""
    def wrap(fn):
        if device.type != "cuda":
            return fn

        def call():
            fn()
            torch.cuda.synchronize(device)
        return call
    return wrap
