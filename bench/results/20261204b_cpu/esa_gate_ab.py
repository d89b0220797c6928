"""A/B of ESA's last step in the fused model: linear_fwd with the sigmoid gate (out = x *
sigmoid(f W^T + b) as the row is stored) against linear_fwd, torch.sigmoid and a product (the
code before), ASID x4 inference on 1x3x180x320 (720p output), alternated round by round in one
process. Run from the repository root:

    OMP_WAIT_POLICY=PASSIVE OMP_NUM_THREADS=2 python bench/results/20261204b_cpu/esa_gate_ab.py [rounds]
"""
import statistics
import sys
import time

import torch
import torch.nn.functional as F

import asid_fast.model as M

torch.set_num_threads(2)
rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 20


def esa_three_ops(esa, x, backend):
    """ESA with the sigmoid and the product as separate torch ops."""
    c1_ = M.linear([x], M._w(esa.conv1), esa.conv1.bias, backend=backend)
    c1 = F.conv2d(M._nchw(c1_), esa.conv2.weight, esa.conv2.bias, stride=2)
    v = F.max_pool2d(c1, kernel_size=7, stride=3)
    c3 = F.interpolate(F.conv2d(v, esa.conv3.weight, esa.conv3.bias, padding=1),
                       size=x.shape[1:3], mode="bilinear", align_corners=False)
    f = M.linear([c1_], M._w(esa.conv_f), esa.conv_f.bias, M._nhwc(c3), backend=backend)
    return x * torch.sigmoid(M.linear([f], M._w(esa.conv4), esa.conv4.bias, backend=backend))


model = M.ASID(4, "asid").eval()
x = torch.rand(1, 3, 180, 320)
VARIANTS = {"three ops": esa_three_ops, "gated linear": M._esa}
times = {name: [] for name in VARIANTS}
with torch.no_grad():
    outs = {}
    for name, esa in VARIANTS.items():
        M._esa = esa
        outs[name] = model(x)
    diff = (outs["three ops"] - outs["gated linear"]).abs().max().item()
    for r in range(rounds):
        for name, esa in (VARIANTS.items() if r % 2 else reversed(VARIANTS.items())):
            M._esa = esa
            t0 = time.perf_counter()
            model(x)
            times[name].append(time.perf_counter() - t0)
print(f"torch {torch.__version__}, {rounds} rounds, ms per ASID x4 1x3x180x320 inference; "
      f"outputs differ by at most {diff:.2e}")
for name, ts in times.items():
    print(f"{name:12s} best {min(ts) * 1e3:6.1f}  median {statistics.median(ts) * 1e3:6.1f}")
paired = [a / b for a, b in zip(times["three ops"], times["gated linear"])]
print(f"three ops / gated linear: best {min(times['three ops']) / min(times['gated linear']):.3f}, "
      f"median {statistics.median(times['three ops']) / statistics.median(times['gated linear']):.3f}, "
      f"median of paired rounds {statistics.median(paired):.3f}")
