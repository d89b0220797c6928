"""A/B of two builds: ASID x4 1x3x180x320 fused inference, 2 threads, best and median of 7 calls
after 2 warm-up calls. Run once per build in fresh processes, alternated, with PYTHONPATH
pointing at the build; argv[1] labels the line."""
import sys, time, statistics, torch, asid_fast
from asid_fast.model import ASID
torch.set_num_threads(2)
m = ASID(4, "asid").eval(); x = torch.rand(1, 3, 180, 320)
ts = []
with torch.no_grad():
    m(x); m(x)
    for _ in range(7):
        t = time.perf_counter(); m(x); ts.append(time.perf_counter() - t)
print(sys.argv[1], "best %.1f median %.1f" % (min(ts) * 1e3, statistics.median(ts) * 1e3), flush=True)
