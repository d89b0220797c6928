"""Where the fused training step spends its time: ASID x2, batch 16 of 64x64 (forward, L1,
backward, Adam), two warm-up and three timed steps, then a torch.profiler table of self CPU time
per op for one step, and one more with input shapes. Run from the repository root:

    OMP_WAIT_POLICY=PASSIVE OMP_NUM_THREADS=2 python bench/results/20261204b_cpu/profile_train_step.py
"""
import time

import torch
from torch.profiler import ProfilerActivity, profile

from asid_fast.model import ASID

torch.set_num_threads(2)
torch.manual_seed(0)
model = ASID(2, "asid")
x, target = torch.rand(16, 3, 64, 64), torch.rand(16, 3, 128, 128)
optimizer = torch.optim.Adam(model.parameters(), 1e-4)


def step():
    optimizer.zero_grad(set_to_none=True)
    (model(x) - target).abs().mean().backward()
    optimizer.step()


for _ in range(2):
    step()
times = []
for _ in range(3):
    t0 = time.perf_counter()
    step()
    times.append(time.perf_counter() - t0)
print("step ms", [round(1000 * t) for t in times])
with profile(activities=[ProfilerActivity.CPU]) as prof:
    step()
print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=35))
with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
    step()
print(prof.key_averages(group_by_input_shape=True).table(
    sort_by="self_cpu_time_total", row_limit=40, max_name_column_width=40,
    max_shapes_column_width=90))
