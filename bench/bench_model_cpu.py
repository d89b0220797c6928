"""CPU benchmark of the fused model (``asid_fast.model.ASID``) against the reference (issue 5).

* Inference: ASID x4 on a 1x3x180x320 float32 input (720p output): reference eager,
  ``torch.compile(reference)`` and the fused model in eager mode (backend ``--backend``).
* Training step: ASID x2, batch 4 of 64x64 patches: forward, L1 loss, backward, for the
  reference and the fused model; peak memory of one step, each variant in a fresh subprocess
  (growth of the process's peak resident set over its resident set before the step; Linux).

Every variant is timed side by side in one process: rounds of one run of each variant in turn,
after warm-up; reported are the minimum and the median wall time over the rounds and the
speed-up over the reference eager model, as the median of the per-round ratios (robust on a
shared, noisy machine) and as the ratio of the minima. ``--profile`` also prints a torch.profiler table of self CPU time per op for
the fused inference. Run (2 threads, passive OpenMP waits, as every CPU benchmark of this
project):

    OMP_WAIT_POLICY=PASSIVE python bench/bench_model_cpu.py --threads 2
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch starts OpenMP

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from asid_fast.model import ASID  # noqa: E402
from asid_fast.reference import ASID as ReferenceASID  # noqa: E402


def _models(scale, backend):
    torch.manual_seed(0)
    ref = ReferenceASID(scale, "asid")
    fused = ASID(scale, "asid", backend=backend)
    fused.load_state_dict(ref.state_dict())
    return ref, fused


def _time_rounds(variants, rounds, warmup):
    """{name: [seconds per round]} running each variant once per round, in turn."""
    for _ in range(warmup):
        for fn in variants.values():
            fn()
    times = {name: [] for name in variants}
    for _ in range(rounds):
        for name, fn in variants.items():
            t = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t)
    return times


def _summary(times, baseline):
    """Per variant: min / median / max ms, and its speed-up over ``baseline`` as the median of
    the per-round ratios (each round runs every variant back to back, so a round's ratio
    compares runs made under the same machine load) and as the ratio of the minima."""
    rows = []
    base = times[baseline]
    for name, ts in times.items():
        rows.append({"name": name, "ms_min": 1e3 * min(ts), "ms_median": 1e3 * statistics.median(ts),
                     "ms_max": 1e3 * max(ts),
                     "speedup_median_of_rounds": statistics.median(b / t for b, t in zip(base, ts)),
                     "speedup_of_minima": min(base) / min(ts)})
    return rows


def _print(title, rows):
    print(f"\n{title}  (speed-up over the reference: median of per-round ratios / ratio of minima)")
    for r in rows:
        print(f"  {r['name']:<28} min {r['ms_min']:8.1f} ms  median {r['ms_median']:8.1f} ms  "
              f"x{r['speedup_median_of_rounds']:.2f} / x{r['speedup_of_minima']:.2f}")


def inference(args):
    ref, fused = _models(4, args.backend)
    ref.eval(), fused.eval()
    x = torch.rand(1, 3, 180, 320)
    variants = {"reference eager": lambda: ref(x), f"fused eager ({args.backend})": lambda: fused(x)}
    if not args.skip_compile:
        compiled = torch.compile(ref)
        t = time.perf_counter()
        with torch.no_grad():
            compiled(x)
        print(f"torch.compile(reference): first call (compilation) {time.perf_counter() - t:.0f} s")
        variants["torch.compile(reference)"] = lambda: compiled(x)
    with torch.no_grad():
        want = ref(x)
        err = (fused(x) - want).abs().max().item() / want.abs().max().item()
        times = _time_rounds(variants, args.rounds, args.warmup)
    print(f"fused vs reference output: max |diff| / max |ref| = {err:.1e}")
    return _summary(times, "reference eager")


def _train_step(model, x, target):
    model.zero_grad(set_to_none=True)
    F.l1_loss(model(x), target).backward()


def _train_data():
    g = torch.Generator().manual_seed(1)
    return torch.rand(4, 3, 64, 64, generator=g), torch.rand(4, 3, 128, 128, generator=g)


def training(args):
    ref, fused = _models(2, args.backend)
    x, target = _train_data()
    variants = {"reference eager": lambda: _train_step(ref, x, target),
                f"fused eager ({args.backend})": lambda: _train_step(fused, x, target)}
    return _summary(_time_rounds(variants, args.rounds, args.warmup), "reference eager")


def _status_kib(field):
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field + ":"))


def peak_memory_child(which, backend):
    """One training step of one variant in this (fresh) process: growth of the peak resident set
    (VmHWM, reset just before the step) over the resident set before it, in MiB. (ru_maxrss would
    not do: Linux carries it over from the parent across fork and exec.)"""
    ref, fused = _models(2, backend)
    model = ref if which == "reference" else fused
    x, target = _train_data()
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset the peak resident set to the current one
    before = _status_kib("VmRSS")
    _train_step(model, x, target)
    return (_status_kib("VmHWM") - before) / 1024


def peak_memory(args):
    out = {}
    for which in ("reference", "fused"):
        cmd = [sys.executable, __file__, "--threads", str(args.threads), "--backend", args.backend,
               "--memory-child", which]
        out[which] = float(subprocess.run(cmd, check=True, capture_output=True, text=True)
                           .stdout.strip().splitlines()[-1])
    return out


def profile(args):
    from torch.profiler import ProfilerActivity, profile as torch_profile
    _, fused = _models(4, args.backend)
    x = torch.rand(1, 3, 180, 320)
    with torch.no_grad():
        fused.eval()(x)
        with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
            fused(x)
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=20))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--backend", default="auto", help="backend of the fused model")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--skip-compile", action="store_true", help="no torch.compile(reference)")
    p.add_argument("--skip-training", action="store_true")
    p.add_argument("--profile", action="store_true", help="per-op profile of fused inference")
    p.add_argument("--json", help="write the results to this file")
    p.add_argument("--memory-child", choices=("reference", "fused"), help=argparse.SUPPRESS)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    if args.memory_child:
        print(peak_memory_child(args.memory_child, args.backend))
        return
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}, fused backend {args.backend!r}")
    results = {"inference_asid_x4_1x3x180x320": inference(args)}
    _print("Inference, ASID x4, 1x3x180x320 (720p output):", results["inference_asid_x4_1x3x180x320"])
    if not args.skip_training:
        results["train_step_asid_x2_4x3x64x64"] = training(args)
        _print("Training step (forward + L1 + backward), ASID x2, batch 4 of 64x64:",
               results["train_step_asid_x2_4x3x64x64"])
        results["train_step_peak_memory_mib"] = peak_memory(args)
        print("  peak memory of one step (RSS growth, fresh process): " + ", ".join(
            f"{k} {v:.0f} MiB" for k, v in results["train_step_peak_memory_mib"].items()))
    if args.profile:
        profile(args)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
