"""Fused ASID x4 on 64x64 tiles, 1, 4 or 8 tiles per forward, 2 threads: time per tile."""
import time, torch
from asid_fast.model import ASID
torch.set_num_threads(2)
m = ASID(4, "asid").eval()
with torch.no_grad():
    for rnd in range(2):
        for b in (1, 4, 8):
            x = torch.rand(b, 3, 64, 64)
            for _ in range(2): m(x)
            ts = []
            for _ in range(max(3, 24 // b)):
                a = time.perf_counter(); m(x); ts.append(time.perf_counter() - a)
            print("batch", b, "per tile min %.1f ms median %.1f" % (min(ts) / b * 1e3, sorted(ts)[len(ts)//2] / b * 1e3))
