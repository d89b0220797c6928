"""Where fused inference spends its time: a torch.profiler table for one ASID x4 call on a
1x3x180x320 input (after warm-up calls), self CPU time per op on the CPU, GPU time per kernel on
CUDA (the kernels a CUDA graph replays are the same ones). Run from the repository root:

    OMP_WAIT_POLICY=PASSIVE OMP_NUM_THREADS=2 python bench/profile_model.py --threads 2
    python bench/profile_model.py --device cuda --dtype bf16
    python bench/profile_model.py --dtype bf16   # CPU: float32 maps, bf16 products
"""
from __future__ import annotations

import argparse
import os

import torch
from torch.profiler import ProfilerActivity, profile

from asid_fast.model import ASID
from asid_fast.tools import runtime

DTYPES = ("fp32", "tf32", "bf16", "fp16")


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", choices=DTYPES, default="fp32",
                   help="tf32: float32 with TF32 matmuls allowed; bf16 on the CPU: float32 maps "
                        "with bf16 products, as asid-fast's --dtype bf16")
    p.add_argument("--backend", default="auto", help="op backend of the fused model")
    p.add_argument("--rows", type=int, default=20, help="table rows")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    os.environ.setdefault("KINETO_LOG_LEVEL", "6")  # no kineto start/stop lines on stderr
    device = torch.device(args.device)
    if args.dtype == "tf32":
        torch.backends.cuda.matmul.fp32_precision = "tf32"
    dtype = runtime.resolve_dtype(args.dtype, device) if args.dtype != "tf32" else torch.float32
    model = ASID(4, "asid", backend=args.backend).to(device, dtype).eval()
    x = torch.rand(1, 3, 180, 320).to(device, dtype)
    cuda = device.type == "cuda"
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    with torch.no_grad():
        for _ in range(2 if cuda else 1):  # Triton compiles and autotuning happen here
            model(x)
        if cuda:
            torch.cuda.synchronize(device)
        with profile(activities=activities) as prof:
            model(x)
            if cuda:
                torch.cuda.synchronize(device)
    sort = "self_device_time_total" if cuda else "self_cpu_time_total"
    print(prof.key_averages().table(sort_by=sort, row_limit=args.rows, max_name_column_width=60))


if __name__ == "__main__":
    main()
