"""x2 forward + L1 + backward (batch 16 of 64x64, no optimizer step): the reference, the fused
model, and the fused model with its conv chains cut to their products in the forward and the
backward (ASID_CEIL: no LayerNorm, depthwise taps, GELU or gate, nor their derivatives; wrong
gradients, a ceiling), alternating in one process.
Run with the extension built from ceil_switch.patch (a throwaway build)."""
import os, sys, time, statistics
import torch
import torch.nn.functional as F
from asid_fast.model import ASID
from asid_fast.reference.model import ASID as Ref
torch.set_num_threads(2)
torch.manual_seed(0)
ref = Ref(2, "asid").train()
fused = ASID(2, "asid").train()
fused.load_state_dict(ref.state_dict())
g = torch.Generator().manual_seed(2)
x = torch.rand(16, 3, 64, 64, generator=g)
t = torch.rand(16, 3, 128, 128, generator=g)
def run(name):
    if name == "ceil":
        os.environ["ASID_CEIL"] = "1"
    else:
        os.environ.pop("ASID_CEIL", None)
    m = ref if name == "reference" else fused
    m.zero_grad(set_to_none=True)
    s = time.perf_counter(); F.l1_loss(m(x), t).backward(); return time.perf_counter() - s
names = ["reference", "fused", "ceil"]
rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 6
ts = {n: [] for n in names}
for n in names: run(n); run(n)
for r in range(rounds):
    for n in (names if r % 2 == 0 else names[::-1]):
        ts[n].append(run(n))
for n in names:
    print(f"{n:10s} best {min(ts[n])*1e3:8.1f} ms  median {statistics.median(ts[n])*1e3:8.1f} ms")
for a, b in [("reference", "fused"), ("reference", "ceil"), ("fused", "ceil")]:
    pr = statistics.median([p / q for p, q in zip(ts[a], ts[b])])
    print(f"{a} / {b}: best {min(ts[a])/min(ts[b]):.3f}  paired median {pr:.3f}")
