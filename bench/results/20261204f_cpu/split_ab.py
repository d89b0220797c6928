"""A/B of the IDB channel split's backward in the fused x2 training step (16 patches of 64x64,
L1, backward, AdamW): "slices" (autograd's slice backward: a zero-filled map of the input's size
per slice, then their sum) against "joined" (asid_fast.model._split: the two gradients joined by
one cat), switched step by step in one process, the order alternating.

Needs the tried change (`git apply bench/results/20261204f_cpu/split.diff`; not on main).

    OMP_WAIT_POLICY=PASSIVE OMP_NUM_THREADS=2 python bench/results/20261204f_cpu/split_ab.py
"""
import statistics
import time

import torch

import asid_fast.model as M

torch.set_num_threads(2)
VARIANTS = {"slices": lambda x, c: (x[..., :c], x[..., c:]), "joined": M._split}

torch.manual_seed(0)
model = M.ASID(2).train()
opt = torch.optim.AdamW(model.parameters(), lr=1e-6)
x, y = torch.rand(16, 3, 64, 64), torch.rand(16, 3, 128, 128)


def step():
    opt.zero_grad(set_to_none=True)
    torch.nn.functional.l1_loss(model(x), y).backward()
    opt.step()


times = {name: [] for name in VARIANTS}
for name, split in VARIANTS.items():  # warm-up
    M._split = split
    step()
for r in range(15):  # the order alternates round by round (ABBA...)
    for name, split in list(VARIANTS.items())[::1 if r % 2 else -1]:
        M._split = split
        t0 = time.perf_counter()
        step()
        times[name].append((time.perf_counter() - t0) * 1e3)
for name, t in times.items():
    print(f"x2 train step 16x3x64x64  {name:7s} best {min(t):8.1f} ms  median "
          f"{statistics.median(t):8.1f} ms")
print(f"slices / joined: best {min(times['slices']) / min(times['joined']):.3f}, median "
      f"{statistics.median(times['slices']) / statistics.median(times['joined']):.3f}")
