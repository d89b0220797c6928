"""Where the IDB channel split's backward time goes in the fused x2 training step (16 patches of
64x64; forward, L1, backward; no optimizer): torch.profiler over two steps per variant, the
self CPU time per step of the ops the two variants differ in, and their backward nodes' totals.

Needs the tried change (`git apply bench/results/20261204f_cpu/split.diff`; not on main).

    OMP_WAIT_POLICY=PASSIVE OMP_NUM_THREADS=2 python bench/results/20261204f_cpu/split_profile.py
"""
import torch
from torch.profiler import ProfilerActivity, profile

import asid_fast.model as M

torch.set_num_threads(2)
VARIANTS = {"slices": lambda x, c: (x[..., :c], x[..., c:]), "joined": M._split}
OPS = ("aten::fill_", "aten::cat", "aten::add", "aten::copy_")

torch.manual_seed(0)
model = M.ASID(2).train()
x, y = torch.rand(16, 3, 64, 64), torch.rand(16, 3, 128, 128)


def step():
    model.zero_grad(set_to_none=True)
    torch.nn.functional.l1_loss(model(x), y).backward()


for name, split in VARIANTS.items():
    M._split = split
    step()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        step()
        step()
    events = prof.key_averages()
    own = {e.key: round(e.self_cpu_time_total / 2e3, 1) for e in events if e.key in OPS}
    nodes = {e.key: (round(e.cpu_time_total / 2e3, 1), e.count // 2) for e in events
             if e.key in ("SliceBackward0", "_ChannelSplitBackward")}
    print(f"{name}: self ms per step {own}; backward nodes (ms per step, calls) {nodes}")
