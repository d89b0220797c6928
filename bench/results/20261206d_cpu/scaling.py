import torch, collections
from torch.profiler import profile
from asid_fast import model as M
m = M.ASID(4, "asid").eval(); x = torch.rand(1, 3, 180, 320)
res = {}
with torch.inference_mode():
    for n in (1, 2):
        torch.set_num_threads(n); m(x); m(x)
        with profile(record_shapes=True) as prof:
            m(x)
        d = collections.Counter()
        for e in prof.key_averages(group_by_input_shape=True):
            d[(e.key, e.input_shapes.__str__()[:60])] += e.self_cpu_time_total / 1e3
        res[n] = d
tot1, tot2 = sum(res[1].values()), sum(res[2].values())
print("total self ms: 1T %.1f  2T %.1f  speedup %.2f" % (tot1, tot2, tot1 / tot2))
rows = sorted(res[1], key=lambda k: -(res[2][k] - res[1][k] / 2))
print("%-36s %-60s %8s %8s %6s %8s" % ("op", "shapes", "1T ms", "2T ms", "x", "lost ms"))
for k in rows[:25]:
    a, b = res[1][k], res[2][k]
    print("%-36s %-60s %8.1f %8.1f %6.2f %8.1f" % (k[0][:36], k[1], a, b, a / b if b else 0, b - a / 2))
