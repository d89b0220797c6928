"""``asid-fast bench`` end to end on a tiny size: the JSON schema, the table, the plot, and the
option handling. (Speed is never asserted here: ratios belong to the benchmark's own output.)"""
import argparse
import json

import pytest

from asid_fast import flops as FL
from asid_fast.tools import bench as B
from asid_fast.tools import bench_report
from asid_fast.tools.errors import UserError

TINY = ["--size", "12x20", "--train-batch", "1", "--train-size", "16x16", "--dims", "12",
        "--warmup", "1", "--repeats", "2", "--threads", "1", "--device", "cpu"]


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """One run of the command (asid_fast.cli) writing JSON."""
    out = tmp_path_factory.mktemp("bench")
    argv = ["bench", *TINY, "--suites", "ops,inference,train_step", "--json", str(out / "r.json")]
    mp = pytest.MonkeyPatch()
    mp.setenv("OMP_WAIT_POLICY", "PASSIVE")  # no re-exec inside pytest
    mp.setenv("OMP_NUM_THREADS", "1")
    from asid_fast.cli import main

    try:
        assert main(argv) == 0
    finally:
        mp.undo()
    with open(out / "r.json") as f:
        return json.load(f)


def test_report_schema_and_header(report):
    bench_report.validate(report)
    assert report["model"] == "asid" and report["scale"] == 4
    assert report["input"] == [1, 3, 12, 20]
    assert report["flops_paper_rule"] == FL.model_flops("asid", 4, (12, 20), rule="paper")
    assert report["flops_full"] == FL.model_flops("asid", 4, (12, 20), rule="full")
    train = next(r for r in report["results"] if r["mode"] == "train_step")
    assert report["flops_full_train_step"] == train["flops"] > 0
    assert report["device"] == "cpu" and report["threads"] == 1


def test_report_covers_ops_and_models(report):
    rows = report["results"]
    ops = {(r["name"], r["mode"]) for r in rows if r["kind"] == "op"}
    for name in ("window_attention[meso,12]", "window_attention[global,12]",
                 "shared_window_attention[meso,12]", "channel_attention[window,48]",
                 "channel_attention[cell,48]"):
        assert (name, "fwd") in ops and (name, "fwd+bwd") in ops
    shapes = {r["mode"]: r["shape"] for r in rows if r["kind"] == "op"}
    assert shapes == {"fwd": "1x16x24", "fwd+bwd": "1x16x16"}  # padded to the window
    models = {(r["mode"], r["backend"]) for r in rows if r["kind"] == "model"}
    assert models == {(mode, label) for mode in ("inference", "train_step")
                      for label in ("reference", "fused")}  # no --compare: eager models only
    assert {r["name"] for r in rows if r["kind"] == "op"} >= {
        "conv_chain[gate,48]", "conv_chain[qkv,12]", "linear[cat4,48]", "linear[per_image,48]"}


def test_every_public_op_has_a_case():
    from asid_fast.tools import bench_cases as BC

    assert BC.ops_without_case() == []


def test_report_gives_the_gemm_rate_beside_the_models(report):
    gemm = [r for r in report["results"] if r["kind"] == "gemm"]
    assert len(gemm) == 1 and gemm[0]["shape"] == "57600x48x96"
    assert gemm[0]["flops"] == 2 * 57600 * 48 * 96 and gemm[0]["gflops"] > 0
    lines = bench_report.rates(report)
    assert lines[0].startswith("GEMM 57600x48x96")
    assert sum("of the GEMM's" in line for line in lines) == 4  # 2 models x 2 modes
    for mode in ("inference", "train_step"):  # each mode's time at the GEMM's rate
        line = next(line for line in lines if f" {mode} at the GEMM's rate: " in line)
        rows = [r for r in report["results"] if r["kind"] == "model" and r["mode"] == mode]
        ms = rows[0]["flops"] / gemm[0]["gflops"] / 1e6
        assert f"rate: {ms:.1f} ms;" in line
        for r in rows:
            assert f"{r['backend']} {r['ms_median'] / ms:.2f}x" in line
    for other in ({"dtype": "bf16"}, {"device": "cuda"}):  # fp32 on the CPU only
        assert not any("at the GEMM's rate" in line
                       for line in bench_report.rates({**report, **other}))


def test_report_names_the_cpu(report):
    from asid_fast.ops import _registry

    cpu = report["cpu"]
    assert cpu["model"] and cpu["model"] == report["device_name"]
    with open("/proc/cpuinfo") as f:
        flags = next(line for line in f if line.startswith("flags")).split()
    assert cpu["avx512"] == ("avx512f" in flags) and cpu["amx"] == ("amx_tile" in flags)
    assert cpu["kernels_isa"] == _registry.extension().cpu_isa()


def test_report_rows_are_consistent(report):
    for r in report["results"]:
        if r["backend"] == "reference":
            assert r["speedup_vs_reference"] == 1.0
        if r["flops"]:
            assert r["gflops"] == pytest.approx(r["flops"] / (r["ms_median"] / 1e3) / 1e9)
        if r.get("max_rel_diff_vs_reference") is not None:
            assert r["max_rel_diff_vs_reference"] <= 1e-5, r
        assert r["peak_mem_mb"] is None or r["peak_mem_mb"] >= 0
    assert bench_report.diff_violations(report) == []
    assert report["errors"] == []


def test_window_op_flops_follow_the_matmul_count(report):
    row = next(r for r in report["results"]
               if r["name"] == "window_attention[meso,12]" and r["mode"] == "fwd")
    windows = (16 // 8) * (24 // 8)
    assert row["flops"] == 2 * 2 * windows * 64 * 64 * 12  # q k^T and A v


def test_table_lists_every_result(report):
    text = bench_report.table(report)
    assert len(text.splitlines()) == len(report["results"]) + 2


def test_validate_rejects_incomplete_reports(report):
    broken = dict(report, results=[dict(report["results"][0])])
    del broken["results"][0]["ms_median"]
    with pytest.raises(ValueError, match="ms_median"):
        bench_report.validate(broken)
    with pytest.raises(ValueError, match="flops_full"):
        bench_report.validate({k: v for k, v in report.items() if k != "flops_full"})


def test_diff_violations_flag_wrong_outputs(report):
    row = next(r for r in report["results"] if r["backend"] != "reference")
    bad = dict(report, results=[dict(row, max_rel_diff_vs_reference=0.5)])
    assert len(bench_report.diff_violations(bad)) == 1


def test_run_case_compares_each_candidates_first_output():
    """Outputs are compared on each candidate's first call (no extra call): a candidate that is
    off by half is reported at 0.5, a failing one as an error, and each candidate is called
    once, then warmed up and timed."""
    import torch

    from asid_fast.tools import bench_cases as BC
    from asid_fast.tools.bench_timing import Settings

    x = torch.arange(1.0, 5.0)
    calls = {"reference": 0, "off": 0}

    def candidate(label, scale):
        def call():
            calls[label] += 1
            return x * scale
        return call

    def broken():
        raise RuntimeError("wrong")

    case = BC.Case("toy", "op", "fwd", "4", {"reference": candidate("reference", 1.0),
                                             "off": candidate("off", 1.5), "broken": broken},
                   output=lambda r: r)
    rows, skipped, errors = B._run_case(case, torch.device("cpu"), Settings(1, 2, 0.0))
    diffs = {r["backend"]: r["max_rel_diff_vs_reference"] for r in rows}
    assert diffs == {"reference": 0.0, "off": pytest.approx(0.5)}
    assert [e["backend"] for e in errors] == ["broken"] and skipped == []
    # first call, calibration, 2 rounds, peak memory
    assert calls == {"reference": 5, "off": 5}


def test_low_precision_op_cases_compare_with_the_float32_reference():
    """bf16 outputs are compared with the reference in float32 on the same rounded inputs: the
    truth is float32, the reference's bf16 run differs from it by its rounding only."""
    import torch

    from asid_fast.tools import bench_cases as BC

    spec = next(s for s in BC.OP_SPECS if s.function == "layer_norm")
    case = BC.op_case(spec, ("channels", 12), "fwd+bwd", torch.device("cpu"), torch.bfloat16,
                      [], (1, 8, 8))
    truth, ref = case.truth(), case.output(case.candidates["reference"]())
    assert truth.dtype == torch.float32 and ref.dtype == torch.bfloat16
    assert 0 < B._rel_diff(ref, truth) < 0.1
    fp32 = BC.op_case(spec, ("channels", 12), "fwd+bwd", torch.device("cpu"), torch.float32, [],
                      (1, 8, 8))
    assert fp32.truth is None


def test_plot_writes_png(report, tmp_path):
    pytest.importorskip("matplotlib")
    path = tmp_path / "p.png"
    bench_report.plot([report], path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _parse(*argv):
    parser = argparse.ArgumentParser()
    B.add_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(["bench", *argv])


def test_parser_and_option_errors():
    args = _parse("--model", "asid_d8", "--scale", "2", "--backends", "a,b")
    assert (args.model, args.scale, args.backends, args.handler) == ("asid_d8", 2, "a,b", B._run)
    assert B.parse_size("180x320") == (180, 320)
    with pytest.raises(UserError, match="180x320"):
        B.parse_size("180")
    with pytest.raises(UserError, match="suites"):
        B.bench(suites=("nope",), device="cpu")
    with pytest.raises(UserError, match="compare"):
        B.bench(compare=("tensorrt",), device="cpu")
    with pytest.raises(UserError, match="no benchmark case for ops"):
        B.bench(suites=("ops",), ops=["nope"], device="cpu")


def test_default_run_is_ops_and_eager_inference():
    args = _parse()
    assert (args.suites, args.compare, args.ops) == ("ops,inference", "", None)
    assert _parse("--compare").compare == "compile,onnxruntime"
    assert _parse("--compare", "onnxruntime", "--suites", "inference").compare == "onnxruntime"


def test_compare_adds_compiled_models_and_onnxruntime_is_inference_only():
    import torch

    from asid_fast.tools import bench_cases as BC

    skipped = []
    cpu = torch.device("cpu")
    train = BC.model_case("asid", 2, "train_step", cpu, torch.float32, (12, 12), (1, 16, 16),
                          ("compile", "onnxruntime"), skipped)
    assert list(train.candidates) == ["reference", "reference+compile", "fused", "fused+compile"]
    assert [(s["backend"], s["mode"]) for s in skipped] == [("onnxruntime", "train_step")]


def test_progress_counts_the_cases(capsys):
    report = B.bench(suites=("ops",), ops=["layer_norm"], dims=(12,), size=(12, 20),
                     train_batch=1, train_size=(16, 16), device="cpu", warmup=1, repeats=1,
                     threads=1)
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("[")]
    assert len(lines) == 4 and lines[0].startswith("[1/4] op layer_norm[channels,48] fwd")
    assert lines[-1].startswith("[4/4] op layer_norm[channels,12] fwd+bwd")
    assert len(report["results"]) == 2 * 4  # reference and cpu per case
    assert report["flops_full_train_step"] is None  # counted only when the training step runs


def test_onnxruntime_runs_the_exported_reference():
    pytest.importorskip("onnxruntime")
    report = B.bench(suites=("inference",), size=(12, 20), compare=("onnxruntime",),
                     device="cpu", warmup=1, repeats=1, threads=1)
    row = next(r for r in report["results"] if r["backend"] == "onnxruntime")
    assert row["kind"] == "model" and row["mode"] == "inference"
    assert row["max_rel_diff_vs_reference"] <= 1e-4
    assert row["peak_mem_mb"] is None  # its allocations are not torch's
    assert report["onnxruntime"] is not None and report["errors"] == []


def test_no_reexec_under_pytest():
    assert B._bench_argv() is None


def test_bf16_on_the_cpu_benchmarks_bf16_products_or_is_refused():
    """--dtype bf16 on the CPU: float32 maps with bf16 products where the CPU kernels have them
    (the fused model then differs from the reference by bf16 rounding), a clear error elsewhere."""
    import torch

    from asid_fast.ops import _registry
    from helpers import fp32_precision

    ext = _registry.extension()
    with fp32_precision(torch.backends.mkldnn.matmul):  # bench sets it
        if ext is None or not ext.bf16_products_supported():
            with pytest.raises(UserError, match="AVX512-BF16"):
                B.bench(suites=("inference",), size=(12, 20), device="cpu", dtype="bf16")
            return
        report = B.bench(suites=("inference",), size=(12, 20), device="cpu", dtype="bf16",
                         warmup=1, repeats=1, threads=1)
    assert report["dtype"] == "bf16" and report["cpu_bf16_products"]
    fused = next(r for r in report["results"] if r["backend"] == "fused")
    assert 1e-6 < fused["max_rel_diff_vs_reference"] <= bench_report.DIFF_BOUNDS["bf16"]
    assert not bench_report.diff_violations(report)
