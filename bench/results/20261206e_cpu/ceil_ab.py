"""x4 720p forward: the reference, the fused model, and the fused model with its conv chains
cut to their two products (ASID_CEIL: no LayerNorm, depthwise taps, GELU or gate; wrong
outputs, a ceiling), alternating call by call in one process.
Run with the extension built from ceil_switch.patch (a throwaway build)."""
import os, sys, time, statistics
import torch
import asid_fast
from asid_fast.model import ASID
from asid_fast.reference.model import ASID as Ref
print("asid_fast from", asid_fast.__file__, file=sys.stderr)
torch.set_num_threads(2)
torch.manual_seed(0)
ref = Ref(4, "asid").eval()
fused = ASID(4, "asid").eval()
fused.load_state_dict(ref.state_dict())
x = torch.rand(1, 3, 180, 320)
def run(name):
    if name == "ceil":
        os.environ["ASID_CEIL"] = "1"
    else:
        os.environ.pop("ASID_CEIL", None)
    m = ref if name == "reference" else fused
    s = time.perf_counter(); m(x); return time.perf_counter() - s
names = ["reference", "fused", "ceil"]
rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 6
t = {n: [] for n in names}
with torch.no_grad():
    for n in names: run(n); run(n)
    for _ in range(rounds):
        for n in names: t[n].append(run(n))
for n in names:
    print(f"{n:10s} best {min(t[n])*1e3:8.1f} ms  median {statistics.median(t[n])*1e3:8.1f} ms")
for a, b in [("reference", "fused"), ("reference", "ceil"), ("fused", "ceil")]:
    pr = statistics.median([p / q for p, q in zip(t[a], t[b])])
    print(f"{a} / {b}: best {min(t[a])/min(t[b]):.3f}  paired median {pr:.3f}")
