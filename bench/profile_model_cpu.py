"""Where fused inference spends its time on the CPU: a torch.profiler table of self CPU time per
op for one ASID x4 call on a 1x3x180x320 input (after one warm-up call). Run from the repository
root:

    OMP_WAIT_POLICY=PASSIVE OMP_NUM_THREADS=2 python bench/profile_model_cpu.py --threads 2
"""
from __future__ import annotations

import argparse
import os

import torch
from torch.profiler import ProfilerActivity, profile

from asid_fast.model import ASID


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--backend", default="auto", help="op backend of the fused model")
    p.add_argument("--rows", type=int, default=20, help="table rows")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    os.environ.setdefault("KINETO_LOG_LEVEL", "6")  # no kineto start/stop lines on stderr
    model = ASID(4, "asid", backend=args.backend).eval()
    x = torch.rand(1, 3, 180, 320)
    with torch.no_grad():
        model(x)
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            model(x)
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.rows))


if __name__ == "__main__":
    main()
