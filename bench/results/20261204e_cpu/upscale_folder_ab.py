"""End-to-end A/B of `asid-fast upscale` (Python API, x4, default tiles, --batch 1) on a folder of
three 480x640 images (views of examples/astronaut.png, bicubic-enlarged): as shipped (traces after
TRACE_AFTER = 100 forwards of one tile shape) against never tracing, alternated, three rounds each.

    OMP_WAIT_POLICY=PASSIVE .venv/bin/python bench/results/20261204e_cpu/upscale_folder_ab.py
"""
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from asid_fast.tools import upscale

torch.set_num_threads(2)
tmp = Path(tempfile.mkdtemp())
src = Image.open("examples/astronaut.png").convert("RGB").resize((640, 480), Image.BICUBIC)
for i, view in enumerate([src, src.transpose(Image.FLIP_LEFT_RIGHT),
                          src.transpose(Image.FLIP_TOP_BOTTOM)]):
    view.save(tmp / f"in{i}.png")
shipped = upscale.TRACE_AFTER
results = {}
for round_ in range(3):
    for name, after in (("shipped (trace after 100)", shipped), ("eager only", 10 ** 9)):
        upscale.TRACE_AFTER = after
        out = tmp / f"out_{after}"
        t = time.perf_counter()
        upscale.upscale([tmp / f"in{i}.png" for i in range(3)], out, 4, progress=False)
        results.setdefault(name, []).append(time.perf_counter() - t)
        print(f"round {round_} {name}: {results[name][-1]:.2f} s", flush=True)
same = all(np.array_equal(np.asarray(Image.open(tmp / f"out_{shipped}" / f"in{i}.png")),
                          np.asarray(Image.open(tmp / f"out_{10 ** 9}" / f"in{i}.png")))
           for i in range(3))
best = {k: min(v) for k, v in results.items()}
print({k: f"{v:.2f} s" for k, v in best.items()}, "eager / shipped:",
      f"{best['eager only'] / best['shipped (trace after 100)']:.2f}x;",
      "outputs identical" if same else "OUTPUTS DIFFER")
