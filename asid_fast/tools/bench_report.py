"""Presenting ``asid-fast bench`` results: the printed table and rates, the JSON schema check,
and the wall-time-against-work plot (matplotlib, the ``bench`` extra).

``python -m asid_fast.tools.bench_report [--plot F.png] A.json [B.json ...]`` checks several
result files (schema, failed candidates, outputs against the reference) and draws one plot of
them all (the device script uses it to combine its runs).
"""
from __future__ import annotations

import argparse
import json
import math
import sys

TOP_KEYS = ("model", "scale", "input", "flops_paper_rule", "flops_full", "results")
RESULT_KEYS = ("name", "backend", "mode", "ms_median", "ms_min", "ms_max", "gflops", "peak_mem_mb")


def validate(report: dict) -> None:
    """Raise ValueError unless ``report`` has the documented schema."""
    missing = [k for k in TOP_KEYS if k not in report]
    if missing:
        raise ValueError(f"bench report lacks keys {missing}")
    if not isinstance(report["results"], list):
        raise ValueError("bench report: 'results' must be a list")
    for i, row in enumerate(report["results"]):
        lost = [k for k in RESULT_KEYS if k not in row]
        if lost:
            raise ValueError(f"bench report: result {i} ({row.get('name')}) lacks keys {lost}")
        for k in ("ms_median", "ms_min", "ms_max"):
            if not (isinstance(row[k], (int, float)) and math.isfinite(row[k]) and row[k] > 0):
                raise ValueError(f"bench report: result {i} has a bad {k}: {row[k]!r}")
        if not row["ms_min"] <= row["ms_median"] <= row["ms_max"]:
            raise ValueError(f"bench report: result {i}: min <= median <= max violated")


# Coarse agreement bounds for ``max_rel_diff_vs_reference`` (max |out - ref| / max |ref|) of the
# benchmarked outputs: they catch a wrong kernel, not a lost digit (that is the parity tests'
# job). fp32 allows for TF32 convolutions in cuDNN (on by default in torch). In fp16/bf16 op cases
# ref is the float32 reference, so the reference's own row shows its rounding and is not checked.
DIFF_BOUNDS = {"fp32": 2e-3, "bf16": 5e-2, "fp16": 2e-2}


def diff_violations(report: dict) -> list[str]:
    """Candidate results whose output differs from the reference beyond :data:`DIFF_BOUNDS`."""
    bound = DIFF_BOUNDS[report.get("dtype", "fp32")]
    return [f"{r['name']} {r['mode']} [{r['backend']}]: "
            f"rel diff {r['max_rel_diff_vs_reference']:.3g} > {bound:g}" for r in report["results"]
            if r["backend"] != "reference" and r.get("max_rel_diff_vs_reference") is not None
            and not r["max_rel_diff_vs_reference"] <= bound]


def _fmt(value, spec):
    return "-" if value is None else format(value, spec)


def table(report: dict) -> str:
    """The results as a fixed-width text table."""
    head = ("case", "mode", "shape", "backend", "median ms", "min ms", "max ms", "GFLOP/s",
            "GB/s", "peak MiB", "vs ref")
    rows = [head]
    for r in report["results"]:
        rows.append((r["name"], r["mode"], r.get("shape", ""), r["backend"],
                     _fmt(r["ms_median"], ".3f"), _fmt(r["ms_min"], ".3f"),
                     _fmt(r["ms_max"], ".3f"), _fmt(r["gflops"], ".1f"), _fmt(r.get("gbps"), ".1f"),
                     _fmt(r["peak_mem_mb"], ".1f"), _fmt(r.get("speedup_vs_reference"), ".2f")))
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(head))]
    lines = ["  ".join(str(c).ljust(w) if i < 4 else str(c).rjust(w)
                       for i, (c, w) in enumerate(zip(row, widths))) for row in rows]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)


def rates(report: dict) -> list[str]:
    """Lines giving each model candidate's rate (GFLOP/s, full rule) beside the rate of the
    1x1-convolution-shaped GEMM measured in the same run, then (fp32 runs on the CPU, where the
    GEMM and the models compute alike) per model mode the time the model would take if every
    full-rule FLOP ran at that GEMM's rate, and each candidate's time over it: an optimistic
    ceiling for a speed target stated as a ratio to that candidate (depthwise convolutions,
    attention products, norms, softmax and GELU run slower than a GEMM)."""
    gemm = next((r for r in report["results"] if r.get("kind") == "gemm"), None)
    models = [r for r in report["results"] if r.get("kind") == "model" and r["gflops"]]
    lines = []
    if gemm is not None:
        setting = " with torch's bf16 matmul setting" if report.get("cpu_bf16_products") else ""
        lines.append(f"GEMM {gemm['shape']} (M x K x N, a 1x1 convolution's shape; fp32 "
                     f"{gemm['backend']}{setting}): {gemm['gflops']:.1f} GFLOP/s")
    for r in models:
        share = f", {r['gflops'] / gemm['gflops']:.0%} of the GEMM's" if gemm else ""
        lines.append(f"{r['name']} {r['mode']} [{r['backend']}]: {r['gflops']:.1f} GFLOP/s "
                     f"(full rule){share}")
    if gemm is None or report.get("dtype") != "fp32" or report.get("device") != "cpu":
        return lines
    for mode in dict.fromkeys(r["mode"] for r in models):
        rows = [r for r in models if r["mode"] == mode]
        ms = rows[0]["flops"] / (gemm["gflops"] * 1e9) * 1e3
        ratios = ", ".join(f"{r['backend']} {r['ms_median'] / ms:.2f}x" for r in rows)
        lines.append(f"{rows[0]['name']} {mode} at the GEMM's rate: {ms:.1f} ms; candidates' "
                     f"time over it: {ratios}")
    return lines


def plot(reports, path) -> None:
    """Log-log plots of median wall time against GFLOP (left) and against interface MB (right,
    ops only), one colour per backend, one marker per mode."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    markers = {"fwd": "o", "fwd+bwd": "s", "inference": "^", "train_step": "D"}
    fig, (ax_f, ax_b) = plt.subplots(1, 2, figsize=(13, 5.5))
    seen, named = set(), set()
    colours = {}
    for report in reports:
        for r in report["results"]:
            if r.get("flops") and (r["name"], r["mode"]) not in named:
                named.add((r["name"], r["mode"]))
                ax_f.annotate(r["name"], (r["flops"] / 1e9, r["ms_median"]), fontsize=5,
                              alpha=0.7, xytext=(3, 2), textcoords="offset points")
            colour = colours.setdefault(r["backend"], f"C{len(colours) % 10}")
            label = f"{r['backend']} {r['mode']}"
            kw = dict(color=colour, marker=markers.get(r["mode"], "x"),
                      label=None if label in seen else label)
            seen.add(label)
            if r.get("flops"):
                ax_f.scatter(r["flops"] / 1e9, r["ms_median"], **kw)
            if r.get("bytes"):
                ax_b.scatter(r["bytes"] / 1e6, r["ms_median"], **kw)
    for ax, xlabel in ((ax_f, "GFLOP (full rule)"), (ax_b, "MB moved (interface model, ops)")):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("median wall time (ms)")
        ax.grid(True, which="both", alpha=0.3)
    first = reports[0]
    fig.suptitle(f"asid-fast bench: {first['model']} x{first['scale']} on "
                 f"{first.get('device_name', first.get('device', '?'))}")
    ax_f.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(
        description="Check asid-fast bench JSON files (schema, outputs against the reference) "
                    "and optionally plot them together. Exit status 1 on any violation.")
    parser.add_argument("--plot", help="output PNG (needs matplotlib)")
    parser.add_argument("json", nargs="+", help="bench JSON files")
    args = parser.parse_args(argv)
    reports, bad = [], []
    for name in args.json:
        with open(name) as f:
            report = json.load(f)
        validate(report)
        reports.append(report)
        bad += [f"{name}: {v}" for v in diff_violations(report)]
        bad += [f"{name}: {e['name']} {e['mode']} [{e['backend']}] failed: {e['reason']}"
                for e in report.get("errors", ())]
    if args.plot:
        plot(reports, args.plot)
    for line in bad:
        print(f"BENCH CHECK FAILED: {line}")
    print(f"bench check: {len(reports)} report(s), "
          f"{sum(len(r['results']) for r in reports)} results, {len(bad)} problem(s)")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
