"""A/B of the CPU tile loop of `asid-fast upscale`: eager fused model against its trace
(asid_fast.traced.TracedModel, traced on the first call here: TRACE_AFTER = 0), interleaved in
one process, best and median of the rounds; the first call of each shows the trace's cost.

    OMP_WAIT_POLICY=PASSIVE .venv/bin/python bench/results/20261204e_cpu/traced_tiles_ab.py
"""
import statistics
import time

import numpy as np
import torch
from PIL import Image

import asid_fast
from asid_fast.tools import upscale
from asid_fast.tools.tiling import tiled_forward
from asid_fast.tools.upscale import model_fn, to_tensor

upscale.TRACE_AFTER = 0

torch.set_num_threads(2)
model = asid_fast.pretrained(scale=4).eval()
pixels = np.asarray(Image.open("examples/astronaut.png").convert("RGB"))
x = to_tensor(pixels, "cpu")
print("image", tuple(x.shape), "threads", torch.get_num_threads())
for batch in (1, 8):
    fns = {"eager": model_fn(model, torch.float32),
           "traced": model_fn(model, torch.float32, replay=True)}
    times = {k: [] for k in fns}
    outs = {}
    with torch.inference_mode():
        for name, fn in fns.items():  # first call (the trace) outside the rounds
            t = time.perf_counter()
            outs[name] = tiled_forward(fn, x, 4, tile=64, overlap=24, batch=batch)
            print(f"batch {batch} {name}: first call {time.perf_counter() - t:.2f} s")
        for _ in range(5):
            for name, fn in fns.items():
                t = time.perf_counter()
                tiled_forward(fn, x, 4, tile=64, overlap=24, batch=batch)
                times[name].append(time.perf_counter() - t)
    diff = (outs["traced"] - outs["eager"]).abs().max().item()
    for name, ts in times.items():
        print(f"batch {batch} {name}: best {min(ts):.3f} s, median {statistics.median(ts):.3f} s")
    print(f"batch {batch}: eager / traced best {min(times['eager']) / min(times['traced']):.2f}x,"
          f" median {statistics.median(times['eager']) / statistics.median(times['traced']):.2f}x;"
          f" max output difference {diff:.2e}")
