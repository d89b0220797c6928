"""x4 720p inference (1x3x180x320) with float32 products against bf16 products, for the fused
model and the eager reference, interleaved in one process: torch's CPU matmul precision
(torch.backends.mkldnn.fp32_precision, which the fused ops' bf16 products and oneDNN's matmuls
and convolutions follow) switched between calls. Best and median of the rounds.

    OMP_WAIT_POLICY=PASSIVE OMP_NUM_THREADS=2 python bench/results/20261204h_cpu/bf16_products_ab.py 7
"""
import sys
import time

import torch

from asid_fast.model import ASID
from asid_fast.reference.model import ASID as Reference

torch.set_num_threads(2)
rounds = int(sys.argv[1])
fused = ASID(4, "asid", backend="auto").eval()
reference = Reference(4, "asid").eval()
reference.load_state_dict(fused.state_dict())
x = torch.rand(1, 3, 180, 320, generator=torch.Generator().manual_seed(0))
CANDIDATES = {f"{name} {p}": (model, p) for name, model in (("fused", fused),
                                                            ("reference", reference))
              for p in ("ieee", "bf16")}
times = {name: [] for name in CANDIDATES}
outputs = {}
with torch.no_grad():
    for r in range(rounds + 1):  # round 0 warms up
        for name, (model, precision) in CANDIDATES.items():
            torch.backends.mkldnn.fp32_precision = precision
            t0 = time.perf_counter()
            outputs[name] = model(x)
            if r:
                times[name].append(time.perf_counter() - t0)
torch.backends.mkldnn.fp32_precision = "none"
base = outputs["reference ieee"]
for name, ts in times.items():
    ts = sorted(ts)
    err = ((outputs[name] - base).abs().max() / base.abs().max()).item()
    print(f"{name:15s} best {ts[0] * 1e3:7.1f} ms  median {ts[len(ts) // 2] * 1e3:7.1f} ms  "
          f"max |out - reference ieee| / max |reference ieee| {err:.1e}")
ref = sorted(times["reference ieee"])
for name in ("fused ieee", "fused bf16"):
    ts = sorted(times[name])
    print(f"reference ieee / {name}: {ref[0] / ts[0]:.2f}x best, "
          f"{ref[len(ref) // 2] / ts[len(ts) // 2]:.2f}x median")
rb, fb = sorted(times["reference bf16"]), sorted(times["fused bf16"])
print(f"reference bf16 / fused bf16: {rb[0] / fb[0]:.2f}x best, "
      f"{rb[len(rb) // 2] / fb[len(fb) // 2]:.2f}x median")
fi = sorted(times["fused ieee"])
print(f"fused ieee / fused bf16: {fi[0] / fb[0]:.3f} best, {fi[len(fi) // 2] / fb[len(fb) // 2]:.3f} median")
