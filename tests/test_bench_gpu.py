"""The GPU candidates of ``asid-fast bench --compare`` and the judge of issue 18's targets, on the
CPU: option checks, CPU runs skip the GPU candidates with a reason, and the targets' verdicts on
made-up results. (What they measure needs a GPU: bench/device_check.sh.)"""
import importlib.util

import pytest
import torch

from asid_fast.tools import bench_gpu
from asid_fast.tools.bench import bench
from asid_fast.tools.errors import UserError
from conftest import REPO


def _targets():
    spec = importlib.util.spec_from_file_location("gpu_targets", REPO / "bench" / "gpu_targets.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_unknown_candidates_are_refused():
    assert bench_gpu.check(("graphs", "ref-compile")) == ("graphs", "ref-compile")
    with pytest.raises(ValueError, match="unknown GPU candidates \\['graph'\\]"):
        bench_gpu.check(("graph",))
    with pytest.raises(UserError, match="unknown --compare runtimes \\['graph'\\]"):
        bench(suites=("inference",), compare=("graph",), device="cpu")


def test_cpu_runs_skip_the_gpu_candidates_with_a_reason():
    skipped = []
    model = torch.nn.Identity()
    calls = bench_gpu.inference_candidates({"reference": model, "fused": model},
                                           torch.zeros(1, 3, 8, 8), ("graphs", "ref-compile-ro"),
                                           skipped, "asid_x4")
    assert calls == {}
    assert [(s["backend"], s["reason"]) for s in skipped] == [
        ("graphs", "a CUDA candidate"), ("ref-compile-ro", "a CUDA candidate")]
    assert bench_gpu.train_step_models({"reference": model, "fused": model},
                                       torch.zeros(1, 3, 8, 8), ("graphs", "fused-compile-ro"),
                                       skipped, "asid_x4") == {}
    assert skipped[-1] == {"name": "asid_x4", "mode": "train_step", "backend": "fused-compile-ro",
                           "reason": "a CUDA candidate"}
    assert bench_gpu.launch_counts(lambda: None, torch.device("cpu")) is None


def _report(dtype, mode, shape, rows):
    return {"dtype": dtype, "results": [
        {"kind": "model", "name": "asid_x4", "mode": mode, "shape": shape, "backend": label,
         "ms_median": ms, "peak_mem_mb": mem} for label, ms, mem in rows]}


def test_target_verdicts():
    t = _targets()
    reports = [
        _report("fp32", "inference", t.INFERENCE_SHAPE,
                [("reference", 28.0, 1), ("ref-compile", 15.0, 1), ("ref-compile-ro", 4.0, 1),
                 ("fused", 20.0, 1), ("graphs", 2.5, 1)]),
        _report("bf16", "inference", t.INFERENCE_SHAPE,
                [("reference", 9.0, 1), ("graphs", 1.6, 1)]),
        _report("fp32", "train_step", t.TRAIN_SHAPE,
                [("reference", 100.0, 900), ("fused", 45.0, 800),
                 ("reference+compile", 60.0, 700)]),
    ]
    cases = t._rows(reports)
    fp32 = t.inference_target(cases, "fp32", 3.0, 1.5)
    assert fp32.startswith("MET") and "[graphs] 2.500 ms" in fp32 and "1.60x" in fp32
    assert t.inference_target(cases, "bf16", 1.5).startswith("MISSED")
    assert t.train_target(cases).startswith("MET")
    assert t.inference_target({}, "fp32", 3.0, 1.5).startswith("UNMEASURED")
    reports[2]["results"][1]["peak_mem_mb"] = 950  # more memory than the eager reference
    assert t.train_target(t._rows(reports)).startswith("MISSED")
    # the fastest fused step counts, compiled ones included
    reports[2]["results"].append({"kind": "model", "name": "asid_x4", "mode": "train_step",
                                  "shape": t.TRAIN_SHAPE, "backend": "fused-compile-ro",
                                  "ms_median": 40.0, "peak_mem_mb": 850})
    verdict = t.train_target(t._rows(reports))
    assert verdict.startswith("MET") and "[fused-compile-ro] 40.00 ms" in verdict
