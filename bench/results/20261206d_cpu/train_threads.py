import sys, time, torch
sys.path.insert(0, "/work/main/bench/results/20261205b_cpu")
from split_ab import training_step
_, step, _ = training_step()
step()
t = {1: [], 2: []}
for r in range(3):
    for n in (1, 2):
        torch.set_num_threads(n); step()
        t0 = time.perf_counter(); step(); t[n].append(time.perf_counter() - t0)
print({n: round(min(v) * 1e3) for n, v in t.items()}, "speedup %.2f" % (min(t[1]) / min(t[2])))
