import torch, time
from asid_fast import model as M
m = M.ASID(4, "asid").eval(); x = torch.rand(1, 3, 180, 320)
t = {1: [], 2: []}
with torch.inference_mode():
    m(x)
    for r in range(5):
        for n in (1, 2):
            torch.set_num_threads(n); m(x)
            t0 = time.perf_counter(); m(x); t[n].append(time.perf_counter() - t0)
print({n: round(min(v) * 1e3, 1) for n, v in t.items()}, "speedup %.2f" % (min(t[1]) / min(t[2])))
