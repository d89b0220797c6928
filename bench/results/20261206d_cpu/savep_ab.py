import os, sys, time, statistics
sys.path.insert(0, "/work/main/bench/results/20261205b_cpu")
from split_ab import training_step
rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 8
_, step, _ = training_step()
step(); step()
t = {"0": [], "1": []}
for r in range(rounds):
    for v in (("0", "1") if r % 2 == 0 else ("1", "0")):
        os.environ["ASID_SAVEP"] = v
        step()
        t0 = time.perf_counter(); step(); t[v].append(time.perf_counter() - t0)
pairs = [a / b for a, b in zip(t["0"], t["1"])]
print("base best %.1f med %.1f ms; savep best %.1f med %.1f ms" % (
    min(t["0"]) * 1e3, statistics.median(t["0"]) * 1e3, min(t["1"]) * 1e3, statistics.median(t["1"]) * 1e3))
print("base/savep best %.3f, paired median %.3f" % (min(t["0"]) / min(t["1"]), statistics.median(pairs)))
