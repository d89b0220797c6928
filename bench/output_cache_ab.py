"""A/B of the CPU output cache (asid_fast.ops.set_output_cache_limit) on the whole fused model:
ASID x4 inference on 1x3x180x320 and an ASID x2 training step (batch 8 of 48x48, L1, backward,
Adam), each in a fresh process per setting as a user runs it (a process's allocator state
depends on what ran before, so one process cannot hold both sides), the two settings alternated
for ``--rounds`` rounds. Prints best and median ms of each side and the page faults of its last
call. Run from the repository root:

    OMP_WAIT_POLICY=PASSIVE python bench/output_cache_ab.py --threads 2 --rounds 3
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

import torch

SIDES = {"no cache": 0, "cache": 1 << 30}


def _measure(limit: int, calls: int, threads: int) -> dict:
    """In this process: ms per call of each case and the minor page faults of the last call."""
    import torch.nn.functional as F

    from asid_fast import ops
    from asid_fast.model import ASID

    torch.set_num_threads(threads)
    ops.set_output_cache_limit(limit)
    torch.manual_seed(0)
    infer = ASID(4, "asid", backend="cpu").eval()
    x = torch.rand(1, 3, 180, 320)
    train = ASID(2, "asid", backend="cpu").train()
    opt = torch.optim.Adam(train.parameters(), lr=1e-4)
    lr, hr = torch.rand(8, 3, 48, 48), torch.rand(8, 3, 96, 96)

    def step():
        opt.zero_grad(set_to_none=True)
        F.l1_loss(train(lr), hr).backward()
        opt.step()

    def inference():
        with torch.no_grad():
            infer(x)

    out = {}
    for name, fn in (("inference x4 1x3x180x320", inference), ("train step x2 8x3x48x48", step)):
        times = []
        for _ in range(calls + 1):  # the first call warms up
            faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
            faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults
        out[name] = {"ms": [1e3 * t for t in times[1:]], "faults": faults}
    return out


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=3, help="processes per side, alternated")
    p.add_argument("--calls", type=int, default=4, help="timed calls per process and case")
    p.add_argument("--child", type=int, help=argparse.SUPPRESS)  # the cache limit of a child
    args = p.parse_args(argv)
    if args.child is not None:
        print(json.dumps(_measure(args.child, args.calls, args.threads)))
        return
    results: dict = {}
    for _ in range(args.rounds):
        for side, limit in SIDES.items():
            cmd = [sys.executable, __file__, "--child", str(limit), "--calls", str(args.calls),
                   "--threads", str(args.threads)]
            run = subprocess.run(cmd, capture_output=True, text=True, check=True,
                                 env={**os.environ, "OMP_NUM_THREADS": str(args.threads)})
            for case, r in json.loads(run.stdout.splitlines()[-1]).items():
                entry = results.setdefault(case, {}).setdefault(side, {"ms": [], "faults": []})
                entry["ms"] += r["ms"]
                entry["faults"].append(r["faults"])
    for case, sides in results.items():
        base = min(sides["no cache"]["ms"])
        for side, r in sides.items():
            print(f"{case:26s} {side:9s} best {min(r['ms']):7.1f} ms  median "
                  f"{statistics.median(r['ms']):7.1f} ms  speedup (best) {base / min(r['ms']):.3f}"
                  f"  page faults of the last call {r['faults']}")


if __name__ == "__main__":
    main()
