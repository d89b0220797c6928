"""Fused ASID x4 inference time per pixel at four input sizes (2 threads, interleaved rounds,
best of 5), after subtracting the 16x16 call's time as the per-call fixed cost: whether the
per-pixel cost grows once the activation maps outgrow the caches. Run from the repository root:

    OMP_WAIT_POLICY=PASSIVE python bench/results/20261204d_cpu/model_cost_by_size.py
"""
import time

import torch

from asid_fast.model import ASID

torch.set_num_threads(2)
model = ASID(scale=4).eval()
sizes = [(16, 16), (48, 64), (90, 160), (180, 320)]
inputs = {s: torch.rand(1, 3, *s) for s in sizes}
times = {s: [] for s in sizes}
with torch.inference_mode():
    for s in sizes:
        model(inputs[s])
    for _ in range(5):
        for s in sizes:
            calls = 10 if s == (16, 16) else max(1, 57600 // (s[0] * s[1]) // 4)
            start = time.perf_counter()
            for _ in range(calls):
                model(inputs[s])
            times[s].append((time.perf_counter() - start) / calls)
fixed = min(times[(16, 16)])
for s in sizes:
    best = min(times[s])
    print(f"{s}: {best * 1e3:.1f} ms; minus fixed {fixed * 1e3:.1f} ms: "
          f"{(best - fixed) / (s[0] * s[1]) * 1e6:.2f} us/px")
