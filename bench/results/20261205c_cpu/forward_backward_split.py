"""Forward and backward of one x2 training step (batch 16 of 64x64, L1 loss), timed apart: the
fused model against the reference model, alternating, 5 timed rounds after one; best / median ms
and the reference / fused ratio of the medians."""
import statistics
import time

import torch
import torch.nn.functional as F

from asid_fast.model import ASID
from asid_fast.reference.model import ASID as ReferenceASID

torch.set_num_threads(2)
gen = torch.Generator().manual_seed(2)
x = torch.rand(16, 3, 64, 64, generator=gen)
target = torch.rand(16, 3, 128, 128, generator=gen)
torch.manual_seed(0)
models = {"fused": ASID(2, "asid").train(), "reference": ReferenceASID(2, "asid").train()}
times = {name: {"forward": [], "backward": []} for name in models}
for r in range(6):
    for name, model in models.items():
        for p in model.parameters():
            p.grad = None
        t0 = time.perf_counter()
        loss = F.l1_loss(model(x), target)
        t1 = time.perf_counter()
        loss.backward()
        t2 = time.perf_counter()
        if r:
            times[name]["forward"].append((t1 - t0) * 1e3)
            times[name]["backward"].append((t2 - t1) * 1e3)
for name, parts in times.items():
    print(name, ", ".join(f"{k} {min(v):.0f} / {statistics.median(v):.0f} ms"
                          for k, v in parts.items()))
for part in ("forward", "backward"):
    ratio = statistics.median(times["reference"][part]) / statistics.median(times["fused"][part])
    print(f"{part}: reference / fused {ratio:.2f} (medians)")
