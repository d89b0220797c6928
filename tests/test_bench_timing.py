"""The timing harness: interleaved timing, its settings, its pytest-benchmark arguments and peak
memory."""
import inspect
import time

import pytest
import torch

from asid_fast.tools.bench_timing import (DEFAULTS, Settings, Timing, pedantic_args,
                                          peak_memory_mb, settings, time_interleaved)


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


def test_rounds_rotate_the_order():
    order = []
    fns = {name: (lambda name=name: order.append(name)) for name in "abc"}
    time_interleaved(fns, "cpu", warmup=0, repeats=3, min_sample_s=0.0)
    assert order[3:] == list("abc" "bca" "cab")  # after one calibration call each


def test_settings_defaults_and_overrides():
    assert settings("cpu", "op") == DEFAULTS[("cpu", "op")]
    assert settings("cpu", "model", repeats=9) == Settings(DEFAULTS[("cpu", "model")].warmup, 9,
                                                           DEFAULTS[("cpu", "model")].min_sample_s)
    assert settings("cuda", "op", warmup=0).warmup == 0


def test_pedantic_args_sample_as_the_harness_does():
    calls = {"n": 0}

    def tiny():
        calls["n"] += 1

    args = pedantic_args(tiny, "cpu", Settings(warmup=2, repeats=5, min_sample_s=0.002))
    assert calls["n"] == 2  # a first call and the calibration call
    assert args["iterations"] > 10 and args["setup"] is None  # short calls fill a sample
    assert (args["rounds"], args["warmup_rounds"]) == (5, 2)
    args["target"]()
    assert calls["n"] == 3


def test_pedantic_args_fit_pytest_benchmark():
    fixture = pytest.importorskip("pytest_benchmark.fixture")
    args = pedantic_args(lambda: None, "cpu", DEFAULTS[("cpu", "model")])
    assert set(args) <= set(inspect.signature(fixture.BenchmarkFixture.pedantic).parameters)
    assert args["iterations"] == 1  # model samples are single calls


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
