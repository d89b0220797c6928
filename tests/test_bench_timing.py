"""The measurement helpers of ``asid-fast bench``: interleaved timing and peak memory."""
import time

import pytest
import torch

from asid_fast.tools.bench_timing import Timing, peak_memory_mb, time_interleaved


def test_interleaved_timing_measures_each_candidate():
    calls = {"fast": 0, "slow": 0}

    def fast():
        calls["fast"] += 1

    def slow():
        calls["slow"] += 1
        time.sleep(0.004)

    t = time_interleaved({"fast": fast, "slow": slow}, "cpu", warmup=1, repeats=4,
                         min_sample_s=0.0)
    assert set(t) == {"fast", "slow"}
    assert all(len(t[k].samples_ms) == 4 for k in t)
    assert t["slow"].min >= 4.0 > t["fast"].max
    assert calls == {"fast": 1 + 1 + 4, "slow": 1 + 1 + 4}  # warm-up, calibration, samples


def test_samples_repeat_short_calls_to_fill_a_sample():
    n = {"calls": 0}

    def tiny():
        n["calls"] += 1

    time_interleaved({"tiny": tiny}, "cpu", warmup=0, repeats=2, min_sample_s=0.002)
    assert n["calls"] > 10


def test_timing_statistics():
    t = Timing([3.0, 1.0, 2.0, 10.0])
    assert (t.min, t.median, t.max) == (1.0, 2.5, 10.0)


def test_timing_rejects_no_repeats():
    with pytest.raises(ValueError, match="repeats"):
        time_interleaved({"f": lambda: None}, "cpu", repeats=0)


def test_cpu_peak_memory_sees_torch_allocations():
    x = torch.randn(1024, 1024)  # 4 MiB, allocated before: not counted

    def two_temporaries():
        a = x * 2  # +4 MiB
        b = a + 1  # +4 MiB (a still alive): peak 8 MiB
        return b.sum()

    peak = peak_memory_mb(two_temporaries, "cpu")
    assert peak is not None
    assert 8.0 <= peak < 8.1
