"""Issue 18's GPU targets judged from ``asid-fast bench`` JSON files (bench/device_check.sh).

    python bench/gpu_targets.py RESULTS.json [...]

Prints, per model case, every candidate's median time, peak memory and kernel launches, then
each target as MET, MISSED or UNMEASURED (a case or candidate missing from the files):

* ASID x4 inference 1x3x180x320 fp32: the fastest fused candidate at most 3 ms and at least
  1.5x faster than the fastest compiled reference;
* the same in bf16: at most 1.5 ms;
* ASID x4 training step 16x3x64x64 (fp32): the fastest fused step (eager or compiled) at least 2x
  the eager reference and 1.3x the compiled reference, with peak memory no higher than the eager
  reference's.

Exit status 0 (a measurement report: missing a target is a result, not a failure of the run).
"""
from __future__ import annotations

import json
import sys

FUSED = ("fused", "graphs", "fused+compile", "fused-compile-ro")  # graphs: inference only
COMPILED_REFERENCE = ("reference+compile", "ref-compile", "ref-compile-ro", "ref-compile-max")
INFERENCE_SHAPE = "1x3x180x320"
TRAIN_SHAPE = "16x3x64x64"


def _rows(reports):
    """{(dtype, mode, shape): {candidate: row}} of the asid_x4 model results."""
    cases = {}
    for report in reports:
        for row in report["results"]:
            if row["kind"] == "model" and row["name"] == "asid_x4":
                key = (report["dtype"], row["mode"], row["shape"])
                cases.setdefault(key, {})[row["backend"]] = row
    return cases


def _best(rows, labels):
    present = [rows[label] for label in labels if label in rows]
    return min(present, key=lambda r: r["ms_median"]) if present else None


def _judge(name, ok, detail):
    verdict = "UNMEASURED" if ok is None else ("MET" if ok else "MISSED")
    return f"{verdict:10s} {name}: {detail}"


def inference_target(cases, dtype, limit_ms, min_speedup=None):
    rows = cases.get((dtype, "inference", INFERENCE_SHAPE), {})
    fused, compiled = _best(rows, FUSED), _best(rows, COMPILED_REFERENCE)
    name = f"ASID x4 {INFERENCE_SHAPE} inference {dtype}"
    if fused is None or (min_speedup is not None and compiled is None):
        return _judge(name, None, "fused or compiled-reference candidate missing")
    detail = f"best fused [{fused['backend']}] {fused['ms_median']:.3f} ms (limit {limit_ms} ms)"
    ok = fused["ms_median"] <= limit_ms
    if min_speedup is not None:
        speedup = compiled["ms_median"] / fused["ms_median"]
        detail += (f"; best compiled reference [{compiled['backend']}] "
                   f"{compiled['ms_median']:.3f} ms, {speedup:.2f}x (need {min_speedup}x)")
        ok = ok and speedup >= min_speedup
    return _judge(name, ok, detail)


def train_target(cases):
    rows = cases.get(("fp32", "train_step", TRAIN_SHAPE), {})
    fused, eager = _best(rows, FUSED), rows.get("reference")
    compiled = _best(rows, COMPILED_REFERENCE)
    name = f"ASID x4 training step {TRAIN_SHAPE} fp32"
    if fused is None or eager is None or compiled is None:
        return _judge(name, None, "fused, reference or compiled-reference step missing")
    vs_eager = eager["ms_median"] / fused["ms_median"]
    vs_compiled = compiled["ms_median"] / fused["ms_median"]
    memory_ok = fused["peak_mem_mb"] <= eager["peak_mem_mb"]
    detail = (f"best fused [{fused['backend']}] {fused['ms_median']:.2f} ms: {vs_eager:.2f}x "
              f"eager (need 2x), "
              f"{vs_compiled:.2f}x [{compiled['backend']}] (need 1.3x); peak "
              f"{fused['peak_mem_mb']:.0f} MiB vs eager {eager['peak_mem_mb']:.0f} MiB")
    return _judge(name, vs_eager >= 2 and vs_compiled >= 1.3 and memory_ok, detail)


def table(cases) -> str:
    lines = []
    for (dtype, mode, shape), rows in sorted(cases.items()):
        lines.append(f"asid_x4 {mode} {shape} {dtype}")
        for label, r in sorted(rows.items(), key=lambda kv: kv[1]["ms_median"]):
            launches = r.get("launches") or {}
            lines.append(f"  {label:20s} {r['ms_median']:9.3f} ms  peak {r['peak_mem_mb']:8.1f} MiB"
                         f"  kernels {launches.get('kernels', '-')!s:>6}"
                         f"  launch calls {launches.get('launch_calls', '-')!s:>6}"
                         f"  top-level ops {launches.get('top_level_ops', '-')!s:>6}")
    return "\n".join(lines)


def main(paths) -> int:
    reports = [json.load(open(p)) for p in paths]
    cases = _rows(reports)
    print(table(cases))
    print(inference_target(cases, "fp32", 3.0, 1.5))
    print(inference_target(cases, "bf16", 1.5))
    print(train_target(cases))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
