"""Fixed cost of one forward of the shipped x4 model: 16x16 and 64x64 inputs at 1 and 2 threads,
best and median of 25 calls, twice each.

    OMP_WAIT_POLICY=PASSIVE .venv/bin/python bench/results/20261204e_cpu/per_forward_cost.py
    .venv/bin/python bench/results/20261204e_cpu/per_forward_cost.py   # threads spin (default)
"""
import time

import torch

import asid_fast

model = asid_fast.pretrained(scale=4).eval()
for threads in (1, 2, 1, 2):
    torch.set_num_threads(threads)
    for size in (16, 64):
        x = torch.rand(1, 3, size, size)
        with torch.inference_mode():
            for _ in range(5):
                model(x)
            times = []
            for _ in range(25):
                t = time.perf_counter()
                model(x)
                times.append(time.perf_counter() - t)
        times.sort()
        print(f"{threads} thread(s) {size}x{size}: best {times[0] * 1e3:.2f} ms, "
              f"median {times[12] * 1e3:.2f} ms")
