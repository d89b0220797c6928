import torch, time
from asid_fast import model as M
torch.set_num_threads(2)
m = M.ASID(2, "asid")
ps = list(m.parameters()); print(len(ps), sum(p.numel() for p in ps))
for p in ps: p.grad = torch.randn_like(p)
opts = {k: torch.optim.AdamW(ps, lr=1e-4, weight_decay=1e-4, **kw) for k, kw in
        (("loop", {"foreach": False}), ("foreach", {"foreach": True}), ("fused", {"fused": True}))}
t = {k: [] for k in opts}
for r in range(30):
    for k, o in opts.items():
        t0 = time.perf_counter(); o.step(); t[k].append(time.perf_counter() - t0)
for k, v in t.items(): print(k, "best %.2f ms med %.2f" % (min(v) * 1e3, sorted(v)[15] * 1e3))
