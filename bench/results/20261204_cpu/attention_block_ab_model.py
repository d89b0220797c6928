"""In one process, interleaved: the fused model with the CPU attention-block op against the same
model with its attention blocks run as the composition (conv_chain, window attention, linear).
argv: rounds (default 12), threads (default 2)."""
import time, torch, statistics, sys
from asid_fast.model import ASID
import importlib
AB = importlib.import_module("asid_fast.ops.attention_block")
torch.set_num_threads(int(sys.argv[2]) if len(sys.argv) > 2 else 2)
m = ASID(4, "asid").eval(); x = torch.rand(1, 3, 180, 320)
fused = AB._fused
def composition(*a, **k): return None
res = {"block op": [], "composition": []}
with torch.no_grad():
    for r in range(int(sys.argv[1]) if len(sys.argv) > 1 else 12):
        for name, f in (("block op", fused), ("composition", composition)):
            AB._fused = f
            m(x) if r == 0 else None
            t = time.perf_counter(); m(x); res[name].append(time.perf_counter() - t)
AB._fused = fused
for k, v in res.items():
    print("%-12s best %.1f ms median %.1f ms" % (k, min(v) * 1e3, statistics.median(v) * 1e3))
pairs = sorted(c / b for b, c in zip(res["block op"][1:], res["composition"][1:]))
print("paired ratios per round (composition / block op): median %.3f, quartiles %.3f-%.3f" % (pairs[len(pairs) // 2], pairs[len(pairs) // 4], pairs[3 * len(pairs) // 4]))
print("ratio (composition / block op): best %.3f median %.3f" % (min(res["composition"]) / min(res["block op"]), statistics.median(res["composition"]) / statistics.median(res["block op"])))
