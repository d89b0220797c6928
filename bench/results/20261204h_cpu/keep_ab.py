"""A/B of conv_chain's kept projection in the fused training step: the same model, weights and
data, KEEP_MIN_CHANNELS switched between steps (interleaved rounds, one process): "recompute"
(never keep), "keep K>=32" (the shipped rule) and "keep all". Prints best and median step time.

    OMP_WAIT_POLICY=PASSIVE OMP_NUM_THREADS=2 python bench/results/20261204h_cpu/keep_ab.py 16 7
"""
import importlib
import sys
import time

import torch
import torch.nn.functional as F

from asid_fast.model import ASID

chain = importlib.import_module("asid_fast.ops.conv_chain")
torch.set_num_threads(2)
batch, rounds = int(sys.argv[1]), int(sys.argv[2])
torch.manual_seed(0)
model = ASID(2, "asid", backend="auto").train()
gen = torch.Generator().manual_seed(2)
x = torch.rand((batch, 3, 64, 64), generator=gen)
target = torch.rand((batch, 3, 128, 128), generator=gen)
VARIANTS = {"recompute": 10 ** 9, "keep K>=32": 32, "keep all": 0}


def step():
    model.zero_grad(set_to_none=True)
    F.l1_loss(model(x), target).backward()


grads = {}
for name, threshold in VARIANTS.items():  # warm-up, and the first-step gradients compared
    chain.KEEP_MIN_CHANNELS = threshold
    step()
    step()
    grads[name] = torch.cat([p.grad.flatten() for p in model.parameters()])
base = grads["recompute"]
for name, g in grads.items():
    print(f"{name}: gradient max rel diff vs recompute "
          f"{((g - base).abs().max() / base.abs().max()).item():.1e}")
times = {name: [] for name in VARIANTS}
for _ in range(rounds):
    for name, threshold in VARIANTS.items():
        chain.KEEP_MIN_CHANNELS = threshold
        t0 = time.perf_counter()
        step()
        times[name].append(time.perf_counter() - t0)
ref = sorted(times["recompute"])
for name, ts in times.items():
    ts = sorted(ts)
    print(f"{name:12s} best {ts[0] * 1e3:7.1f} ms  median {ts[len(ts) // 2] * 1e3:7.1f} ms  "
          f"recompute/this {ref[0] / ts[0]:.3f} / {ref[len(ref) // 2] / ts[len(ts) // 2]:.3f}")
