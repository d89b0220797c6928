"""How much one image's output depends on the batch it runs in: 16 random 64x64 tiles through the
shipped x4 model in batches of 1, 2, 8 and 16, each against the batch of 16.

    .venv/bin/python bench/results/20261204e_cpu/batch_invariance.py
"""
import torch

import asid_fast

torch.manual_seed(0)
model = asid_fast.pretrained(scale=4).eval()
x = torch.rand(16, 3, 64, 64)
with torch.no_grad():
    whole = model(x)
    for batch in (1, 2, 8, 16):
        worst = max((model(x[i:i + batch]) - whole[i:i + batch]).abs().max().item()
                    for i in range(0, 16, batch))
        print(f"batch {batch} against 16: max difference {worst:.3g}")
