"""The full-rule FLOPs of ASID x4 at 720p output by kind of convolution (1x1, full 3x3,
depthwise 3x3), from forward hooks on the reference model's Conv2d modules (the matmul share
comes from FlopCounterMode, `asid_fast.flops`). Run from the repository root:

    python bench/results/20261204d_cpu/flop_split.py
"""
import collections

import torch

from asid_fast import flops
from asid_fast.reference import ASID

model = ASID(4).eval()
by_kind = collections.Counter()


def count(module, inputs, out):
    k = module.kernel_size[0]
    kind = "depthwise 3x3" if module.groups > 1 else f"{k}x{k}"
    by_kind[kind] += 2 * out.numel() * (module.in_channels // module.groups) * k * k


for m in model.modules():
    if isinstance(m, torch.nn.Conv2d):
        m.register_forward_hook(count)
with torch.no_grad():
    model(torch.rand(1, 3, 180, 320))
total = flops.model_flops("asid", 4, rule="full")
for kind, n in by_kind.items():
    print(f"{kind}: {n / 1e9:.3f} GFLOP, {n / total:.1%}")
rest = total - sum(by_kind.values())
print(f"matmuls (attention, projections): {rest / 1e9:.3f} GFLOP, {rest / total:.1%}")
print(f"total (full rule): {total / 1e9:.3f} GFLOP")
