"""The scripts in bench/ are presets of ``asid-fast bench``: the arguments they pass parse, and
keep the shapes and options their docstrings promise (nothing is timed here); the output cache
A/B measures both of its cases."""
import argparse
import importlib.util
from pathlib import Path

import pytest

from asid_fast.ops import _registry
from asid_fast.tools import bench as B

BENCH = Path(__file__).resolve().parents[1] / "bench"


def _script(name):
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _parse(argv):
    parser = argparse.ArgumentParser()
    B.add_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(argv)


def test_ops_script_times_the_window_ops_on_one_720p_map():
    args = _parse(_script("bench_ops_cpu").cli_args(["--repeats", "4", "--json", "o.json"]))
    assert (args.device, args.suites, args.backends) == ("cpu", "ops", "cpu")
    assert args.ops == "window_attention,shared_window_attention,channel_attention"
    # fwd+bwd on the same 1x180x320 LR map (184x320 padded) as fwd
    assert (args.train_batch, args.train_size, args.size) == (1, "180x320", None)
    assert (args.repeats, args.threads, args.json) == (4, 2, "o.json")
    only = _parse(_script("bench_ops_cpu").cli_args(["--only-window"]))
    assert only.ops == "window_attention"


@pytest.mark.parametrize("extra,n_runs,compare", [([], 2, "compile"),
                                                  (["--skip-compile", "--skip-training"], 1, "")])
def test_model_script_runs_x4_inference_and_the_x2_training_step(extra, n_runs, compare):
    runs = [_parse(argv) for argv in _script("bench_model_cpu").cli_runs(
        ["--rounds", "3", "--backend", "cpu", "--json", "out/m.json", *extra])]
    assert len(runs) == n_runs
    infer = runs[0]
    assert (infer.suites, infer.scale, infer.size, infer.compare) == ("inference", 4, "180x320",
                                                                     compare)
    assert (infer.repeats, infer.fused_backend, infer.json) == (3, "cpu", "out/m_inference.json")
    if n_runs == 2:
        train = runs[1]
        assert (train.suites, train.scale, train.train_batch, train.train_size) == (
            "train_step", 2, 4, "64x64")
        assert (train.compare, train.json) == ("", "out/m_train_step.json")


@pytest.mark.skipif(_registry.why_unavailable("cpu", "cpu") is not None,
                    reason="the output cache belongs to the compiled extension")
def test_output_cache_ab_measures_both_model_cases():
    result = _script("output_cache_ab")._measure(1 << 30, calls=1, threads=1)
    assert set(result) == {"inference x4 1x3x180x320", "train step x2 8x3x48x48"}
    for r in result.values():
        assert len(r["ms"]) == 1 and r["ms"][0] > 0 and r["faults"] >= 0
