"""A/B of the fused conv_chain backward in the whole training step: ASID x2, batch 16 of 64x64
(forward, L1, backward, Adam), the same model and data run with conv_chain's CPU op under
autograd (conv_chain_bwd) and with the composition (the behaviour before it), alternated round by
round in one process. Run from the repository root:

    OMP_WAIT_POLICY=PASSIVE OMP_NUM_THREADS=2 python bench/results/20261204b_cpu/chain_backward_ab_train.py [rounds]
"""
import importlib
import statistics
import sys
import time

import torch
import torch.nn.functional as F

from asid_fast.model import ASID

chain = importlib.import_module("asid_fast.ops.conv_chain")  # the module, not the function
torch.set_num_threads(2)
torch.manual_seed(0)
rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 6
model = ASID(2, "asid")
x, target = torch.rand(16, 3, 64, 64), torch.rand(16, 3, 128, 128)
optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
VARIANTS = {"composition": (), "fused backward": ("cpu",)}


def step():
    optimizer.zero_grad(set_to_none=True)
    loss = F.l1_loss(model(x), target)
    loss.backward()
    optimizer.step()


times = {name: [] for name in VARIANTS}
for r in range(rounds + 1):
    for name, backends in (VARIANTS.items() if r % 2 else reversed(VARIANTS.items())):
        chain.OPS_WITH_FUSED_BACKWARD = backends
        t0 = time.perf_counter()
        step()
        if r:  # round 0 warms both up
            times[name].append(time.perf_counter() - t0)
print(f"torch {torch.__version__}, {rounds} rounds, ms per training step")
for name, ts in times.items():
    print(f"{name:15s} best {min(ts) * 1e3:7.0f}  median {statistics.median(ts) * 1e3:7.0f}")
b, m = (min(times["composition"]) / min(times["fused backward"]),
        statistics.median(times["composition"]) / statistics.median(times["fused backward"]))
print(f"composition / fused backward: best {b:.3f}, median {m:.3f}")
