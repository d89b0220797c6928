"""``asid-fast bench``: FLOPs against wall time, per fused op and per model.

Python API: :func:`bench` returns the report dict (schema in :mod:`bench_report`); the CLI
(``asid-fast bench`` or ``python -m asid_fast bench``) prints it as a table and writes
``--json`` / ``--plot``.

What is measured (see :mod:`bench_cases`): every op of ``asid_fast.ops`` on every available
backend against the reference, forward (inference map) and forward+backward (training map); ASID
or ASID-D8 inference, reference and fused model, beside a 1x1-convolution-shaped GEMM whose rate
the model's GFLOP/s is compared with; with ``--compare``, ``torch.compile`` of both models and
onnxruntime on the exported reference; the training step on request (``--suites``). Timing and
memory rules: :mod:`bench_timing` (the harness every benchmark of this project uses); FLOP
rules: :mod:`asid_fast.flops`. Ratios (``speedup_vs_reference``) come from one interleaved run.

CPU hygiene: ``OMP_WAIT_POLICY=PASSIVE`` only takes effect when set before torch is imported, so
the command re-executes itself with it (and ``OMP_NUM_THREADS``) when it is missing; the torch
thread count is set to ``--threads`` (2 by default).
"""
from __future__ import annotations

import datetime
import functools
import json
import os
import platform
import sys
import time
import warnings
from pathlib import Path

import torch
from tqdm import tqdm

from .. import flops as FL
from . import bench_cases as BC
from . import bench_gpu, bench_machine, bench_onnx, bench_report, runtime
from .atomic import write_text
from .bench_timing import peak_memory_mb, settings, synchronize, time_interleaved
from .errors import UserError

SUITES = ("ops", "inference", "train_step")
DEFAULT_SUITES = ("ops", "inference")
_REEXEC_FLAG = "ASID_FAST_BENCH_REEXEC"
BYTES_RULE = ("interface model: the forward reads every input and writes every output once; the "
              "backward reads output grads, inputs and outputs and writes input grads")


def parse_size(text: str, option: str = "--size") -> tuple[int, int]:
    """"HxW" -> (H, W)."""
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise UserError(f"{option} must look like 180x320, got {text!r}") from None
    if h < 1 or w < 1:
        raise UserError(f"{option} must be positive, got {text!r}")
    return h, w


def _rel_diff(out, ref):
    """max |out - ref| / max |ref| (inf when the shapes differ)."""
    if out.shape != ref.shape:
        return float("inf")
    ref = ref.float()
    return float((out.float() - ref).abs().max() / ref.abs().max().clamp_min(1e-30))


def _log(message: str) -> None:
    """A line on stderr (above the progress bar when there is one)."""
    tqdm.write(message, file=sys.stderr)


def _first_calls(case, device, log):
    """Run each candidate once (this is where torch.compile compiles and onnxruntime exports) and
    compare that call's output with the baseline's (or with ``case.truth()``). Returns ({label:
    first call ms}, {label: max rel diff}, skipped, errors); a failing baseline raises."""
    first, outputs, skipped, errors = {}, {}, [], []
    for label, fn in case.candidates.items():
        t0 = time.perf_counter()
        try:
            result = fn()
            synchronize(device)
        except Exception as e:  # a backend that cannot run, or a broken one: report, go on
            if label == case.baseline:
                raise
            entry = {"name": case.name, "mode": case.mode, "backend": label,
                     "reason": f"{type(e).__name__}: {e}".splitlines()[0][:300]}
            (skipped if "cannot run" in entry["reason"] else errors).append(entry)
            log(f"  {label}: {'skipped' if entry in skipped else 'FAILED'}: {entry['reason']}")
            continue
        first[label] = (time.perf_counter() - t0) * 1e3
        if case.output is not None:
            outputs[label] = case.output(result)
        del result
    diffs = {}
    if outputs:
        ref = case.truth() if case.truth else outputs[case.baseline]
        diffs = {label: _rel_diff(out, ref) for label, out in outputs.items()}
    return first, diffs, skipped, errors


def _run_case(case, device, setting):
    """Time one case; returns (result rows, skipped, errors)."""
    first, diffs, skipped, errors = _first_calls(case, device, _log)
    fns = {label: case.candidates[label] for label in first}
    timings = time_interleaved(fns, device, max(setting.warmup - 1, 0), setting.repeats,
                               setting.min_sample_s)
    base = timings[case.baseline].median
    rows = []
    for label, t in timings.items():
        seconds = t.median / 1e3
        rows.append({
            "name": case.name, "kind": case.kind, "backend": label, "mode": case.mode,
            "shape": case.shape, "ms_median": t.median, "ms_min": t.min, "ms_max": t.max,
            "samples": len(t.samples_ms), "first_call_ms": first[label],
            "flops": case.flops,
            "gflops": case.flops / seconds / 1e9 if case.flops else None,
            "bytes": case.bytes,
            "gbps": case.bytes / seconds / 1e9 if case.bytes else None,
            "peak_mem_mb": (None if label in case.foreign
                            else peak_memory_mb(fns[label], device)),
            "launches": bench_gpu.launch_counts(fns[label], device),
            "speedup_vs_reference": base / t.median,
            "max_rel_diff_vs_reference": diffs.get(label),
        })
    return rows, skipped, errors


def _plan(suites, ops, dims, model, scale, dev, dt, backends, lr, infer_bhw, train_bhw, compare,
          fused_backend, skipped) -> list:
    """Zero-argument builders of the cases to run, in order (a case's inputs exist only while
    it runs)."""
    plan = []
    if "ops" in suites:
        for spec, variant, mode in BC.op_plan(dims, ops):
            bhw = infer_bhw if mode == "fwd" else train_bhw
            plan.append(functools.partial(BC.op_case, spec, variant, mode, dev, dt, backends, bhw))
    model_modes = [s for s in SUITES if s in suites and s != "ops"]
    if model_modes:
        plan.append(functools.partial(BC.gemm_case, dev))
    for mode in model_modes:
        plan.append(functools.partial(BC.model_case, model, scale, mode, dev, dt, lr, train_bhw,
                                      compare, skipped, fused_backend))
    return plan


def bench(model: str = "asid", scale: int = 4, size=None, backends=None, device="auto",
          dtype: str = "fp32", suites=DEFAULT_SUITES, ops=None, dims=(36, 24, 12),
          train_batch: int = 16, train_size=(64, 64), compare=(), fused_backend: str = "auto",
          warmup=None, repeats=None, threads: int = 2, progress=None,
          show_progress: bool = False) -> dict:
    """Run the benchmarks and return the report (see module docstring).

    size: LR (H, W), default the LR of a 720p output; backends: op backends besides the
    reference (default: ``asid_fast.ops.available_backends(device)``, without the Triton
    interpreter on CPU); ops: op names to run (default all); compare: a subset of
    :data:`bench_cases.COMPARE`; fused_backend: op backend of the fused model; warmup/repeats:
    None = the harness's defaults (:data:`bench_timing.DEFAULTS`); progress: called with the
    report after each case (the CLI saves partial results with it); show_progress: a progress
    bar on a terminal (each case is also logged to stderr as "[i/n] ..."). dtype "bf16" on the
    CPU keeps float32 maps and sets torch's CPU matmul precision to bf16 for the process
    (:func:`runtime.enable_cpu_bf16_products`).
    """
    from ..ops import available_backends
    from ..reference.model import check_config

    try:
        check_config(scale, model)
    except ValueError as e:
        raise UserError(str(e)) from None
    for what, given, known in (("suites", suites, SUITES), ("--compare runtimes", compare,
                                                            BC.COMPARE)):
        if set(given) - set(known):
            raise UserError(f"unknown {what} {sorted(set(given) - set(known))}; choose from "
                            f"{known}")
    dev = runtime.resolve_device(device)
    dt = runtime.resolve_dtype(dtype, dev)
    cpu_bf16 = runtime.cpu_bf16_products(dtype, dev)
    if dev.type == "cpu":
        torch.set_num_threads(threads)
    lr = tuple(size) if size is not None else FL.lr_size_for_output(scale)
    if backends is None:
        backends = [b for b in available_backends(dev) if not (dev.type == "cpu" and b == "triton")]
    infer_bhw = (1, *FL.padded_size(lr))
    train_bhw = (train_batch, *FL.padded_size(train_size))
    report = {
        "model": model, "scale": scale, "input": [1, 3, *lr],
        "flops_paper_rule": FL.model_flops(model, scale, lr, rule="paper"),
        "flops_full": FL.model_flops(model, scale, lr, rule="full"),
        "train_input": [train_batch, 3, *train_size],
        # counting a training step's FLOPs takes seconds: only when that suite runs
        "flops_full_train_step": (FL.model_flops(model, scale, train_size, train_batch,
                                                 rule="full", train=True)
                                  if "train_step" in suites else None),
        "rules": _rules(dev),
        "device": dev.type, "device_name": bench_machine.device_name(dev),
        "cpu": bench_machine.cpu_info(), "dtype": dtype, "cpu_bf16_products": cpu_bf16,
        "threads": torch.get_num_threads() if dev.type == "cpu" else None,
        "tf32": {"matmul": torch.backends.cuda.matmul.allow_tf32,
                 "cudnn": torch.backends.cudnn.allow_tf32},
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
        "backends": [BC.BASELINE, *[b for b in backends if b != BC.BASELINE]],
        "fused_backend": fused_backend, "compare": list(compare),
        "host": platform.node(), "date": datetime.datetime.now().isoformat(timespec="seconds"),
        **bench_machine.versions(), "results": [], "skipped": [], "errors": [],
    }
    if "ops" in suites and ops is None:
        report["skipped"] += [{"name": name, "backend": "*", "reason": "no benchmark case defined "
                               "(add an OpSpec in asid_fast/tools/bench_cases.py)"}
                              for name in BC.ops_without_case()]
    try:
        plan = _plan(suites, ops, tuple(dims), model, scale, dev, dt, backends, lr, infer_bhw,
                     train_bhw, tuple(compare), fused_backend, report["skipped"])
    except ValueError as e:
        raise UserError(str(e)) from None
    bar = tqdm(plan, desc="asid-fast bench", unit="case", file=sys.stderr, leave=False,
               disable=None if show_progress else True)
    for i, build in enumerate(bar, 1):
        case = build()
        _log(f"[{i}/{len(plan)}] {case.kind} {case.name} {case.mode} {case.shape}: "
             f"{', '.join(case.candidates)}")
        kind = "model" if case.kind == "model" else "op"
        rows, skipped, errors = _run_case(case, dev, settings(dev, kind, warmup, repeats))
        report["results"].extend(rows)
        report["skipped"].extend(skipped)
        report["errors"].extend(errors)
        if progress is not None:
            progress(report)
        del case  # free this case's inputs before the next one is built
        if dev.type == "cuda":
            torch.cuda.empty_cache()
    bench_report.validate(report)
    return report


def _rules(device) -> dict:
    return {"flops_paper_rule": FL.PAPER_RULE, "flops_full": FL.FULL_RULE, "bytes": BYTES_RULE,
            "peak_mem_mb": _memory_rule(device), "timing": _timing_rule(device),
            "max_rel_diff_vs_reference": "max |out - ref| / max |ref| of the first output "
            "(fwd+bwd: the first input's gradient); ref = the reference backend's output, or "
            "for fp16/bf16 op cases the reference run in float32 on the same rounded inputs",
            "gemm": f"fp32 {BC.GEMM} of (M, K) by (K, N), M x K x N = "
                    f"{'x'.join(map(str, BC.GEMM_SHAPE))}, into a preallocated output",
            "compile": "torch.compile(model) with default options; dynamo recompile limit "
                       f"raised to {BC.DYNAMO_RECOMPILE_LIMIT}",
            "onnxruntime": bench_onnx.RULE}


def _memory_rule(device) -> str:
    if device.type == "cuda":
        return "torch.cuda.max_memory_allocated during one call minus memory allocated before it"
    return ("peak of the running sum of torch.profiler(profile_memory=True) allocation events "
            "during one call (torch CPU allocator; inputs excluded)")


def _timing_rule(device) -> str:
    if device.type == "cuda":
        return ("CUDA events around one call after an L2 flush, synchronize, interleaved rounds, "
                "median/min/max over rounds")
    sample_ms = settings(device, "op").min_sample_s * 1e3
    return (f"perf_counter over back-to-back calls (>= {sample_ms:g} ms per op sample), "
            "interleaved rounds, median/min/max over rounds")


# ---- command line -----------------------------------------------------------------------------

def _bench_argv():
    """The arguments after ``bench`` of the running command, or None when this process is not
    the ``asid-fast`` / ``python -m asid_fast`` command."""
    prog = Path(sys.argv[0])
    is_cli = prog.name == "asid-fast" or (prog.parent.name == "asid_fast"
                                          and prog.name in ("__main__.py", "cli.py"))
    if is_cli and "bench" in sys.argv[1:]:
        return sys.argv[sys.argv.index("bench") + 1:]
    return None


def ensure_cpu_environment(threads: int) -> None:
    """Re-execute the command with OMP_WAIT_POLICY=PASSIVE and OMP_NUM_THREADS=threads when
    they are not set (they are read when torch loads); warn when that is not possible."""
    want = {"OMP_WAIT_POLICY": "PASSIVE", "OMP_NUM_THREADS": str(threads)}
    if all(os.environ.get(k) == v for k, v in want.items()):
        return
    argv = _bench_argv()
    if argv is None or os.environ.get(_REEXEC_FLAG):
        warnings.warn("asid-fast bench: set OMP_WAIT_POLICY=PASSIVE and OMP_NUM_THREADS="
                      f"{threads} before starting Python for stable CPU timings", RuntimeWarning)
        return
    print(f"asid-fast bench: re-running with OMP_WAIT_POLICY=PASSIVE OMP_NUM_THREADS={threads}",
          file=sys.stderr, flush=True)
    sys.stdout.flush()
    env = {**os.environ, **want, _REEXEC_FLAG: "1"}
    os.execve(sys.executable, [sys.executable, "-m", "asid_fast", "bench", *argv], env)


def add_parser(subparsers):
    p = subparsers.add_parser(
        "bench", help="benchmark fused ops and models (FLOPs vs wall time)",
        description="Benchmark the fused ops against the reference and the models (reference vs "
                    "fused; with --compare also torch.compile and onnxruntime); print a table, "
                    "optionally write JSON/plot.")
    p.add_argument("--model", "--variant", dest="model", default="asid",
                   choices=("asid", "asid_d8"))
    p.add_argument("--scale", type=int, default=4, choices=(2, 3, 4))
    p.add_argument("--size", help="LR input HxW (default: the LR of a 720p output, e.g. 180x320 "
                                  "for x4)")
    p.add_argument("--backends", help="comma-separated op backends to compare with the reference "
                                      "(default: all available on the device)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--dtype", default="fp32", choices=sorted(runtime.DTYPES),
                   help="as asid-fast upscale's --dtype (bf16 on the CPU: float32 maps with bf16 "
                        "products for every candidate that takes them)")
    p.add_argument("--suites", default=",".join(DEFAULT_SUITES),
                   help=f"comma-separated subset of {','.join(SUITES)} (default: "
                        f"{','.join(DEFAULT_SUITES)}; add train_step for the training step)")
    p.add_argument("--ops", help="comma-separated ops of the ops suite (default: all of "
                                 f"{','.join(s.function for s in BC.OP_SPECS)})")
    p.add_argument("--dims", default="36,24,12",
                   help="attention widths for the window-op cases (default 36,24,12)")
    p.add_argument("--train-batch", type=int, default=16,
                   help="training-step batch, and the batch of the fwd+bwd op cases (default 16)")
    p.add_argument("--train-size", default="64x64",
                   help="training LR patch HxW, and the map of the fwd+bwd op cases (default "
                        "64x64)")
    p.add_argument("--fused-backend", default="auto",
                   help="op backend of the fused model in the model suites (default auto)")
    p.add_argument("--compare", nargs="?", const="compile,onnxruntime", default="",
                   metavar="RUNTIMES",
                   help="also run the models on other runtimes: comma-separated subset of "
                        f"{','.join(BC.COMPARE)} (alone: compile,onnxruntime; onnxruntime: CPU "
                        "inference, when installed; the others: CUDA, see "
                        "asid_fast.tools.bench_gpu); they are slow to set up (torch.compile "
                        "takes minutes on a CPU)")
    p.add_argument("--warmup", type=int, help="warm-up calls per candidate (default per device)")
    p.add_argument("--repeats", type=int, help="timed rounds (default per device)")
    p.add_argument("--threads", type=int, default=2, help="CPU threads (default 2)")
    p.add_argument("--json", help="write the report as JSON to this file")
    p.add_argument("--plot", help="write a wall-time vs FLOPs plot (PNG; needs matplotlib)")
    p.set_defaults(handler=_run)


def _csv(text):
    return [v.strip() for v in text.split(",") if v.strip()]


def _write_json(report, path):
    write_text(path, json.dumps(report, indent=1) + "\n")


def _run(args):
    if args.plot:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            raise UserError("--plot needs matplotlib (pip install 'asid_fast[bench]')") from None
    device = runtime.resolve_device(args.device)
    if device.type == "cpu":
        ensure_cpu_environment(args.threads)
    try:
        dims = tuple(int(d) for d in _csv(args.dims))
    except ValueError:
        raise UserError(f"--dims must be comma-separated integers, got {args.dims!r}") from None
    report = bench(model=args.model, scale=args.scale,
                   size=parse_size(args.size) if args.size else None,
                   backends=_csv(args.backends) if args.backends else None, device=args.device,
                   dtype=args.dtype, suites=tuple(_csv(args.suites)),
                   ops=_csv(args.ops) if args.ops else None, dims=dims,
                   train_batch=args.train_batch,
                   train_size=parse_size(args.train_size, "--train-size"),
                   compare=tuple(_csv(args.compare)), fused_backend=args.fused_backend,
                   warmup=args.warmup, repeats=args.repeats, threads=args.threads,
                   progress=(lambda r: _write_json(r, args.json)) if args.json else None,
                   show_progress=True)
    print(f"{report['model']} x{report['scale']} input {report['input']}: "
          f"paper rule {report['flops_paper_rule'] / 1e9:.3f} G (MACs), "
          f"full rule {report['flops_full'] / 1e9:.3f} GFLOP; {report['device_name']}, "
          f"{report['dtype']}{' products' if report.get('cpu_bf16_products') else ''}, "
          f"torch {report['torch']}")
    print(bench_machine.describe_cpu(report["cpu"]))
    print(bench_report.table(report))
    for line in bench_report.rates(report):
        print(line)
    for s in report["skipped"]:
        print(f"skipped: {s['name']} {s.get('mode', '')} [{s['backend']}]: {s['reason']}")
    if args.json:
        _write_json(report, args.json)
    if args.plot:
        bench_report.plot([report], args.plot)
    if report["errors"]:
        raise UserError(f"{len(report['errors'])} candidate(s) failed: " + "; ".join(
            f"{e['name']} {e['mode']} [{e['backend']}]: {e['reason']}" for e in report["errors"]))
