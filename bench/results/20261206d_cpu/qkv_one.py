import torch, time
import asid_fast.ops
torch.set_num_threads(2)
op = torch.ops.asid_fast.conv_chain_fwd.default
x = torch.randn(1, 184, 320, 48)
nw, nb = torch.randn(48), torch.randn(48)
w = torch.randn(144, 48) * 0.1; dw = torch.randn(144, 1, 3, 3) * 0.1
def three():
    return [op(x, nw, nb, 1e-6, wi, None, False, di, None, "none", None)
            for wi, di in zip(w.chunk(3), dw.chunk(3))]
def one():
    return op(x, nw, nb, 1e-6, w, None, False, dw, None, "none", None)
a = three(); b = one()
print("max diff", max((a[i] - b[..., 48 * i:48 * (i + 1)]).abs().max().item() for i in range(3)))
t = {"three": [], "one": []}
with torch.inference_mode():
    for r in range(30):
        for n, f in (("three", three), ("one", one)):
            t0 = time.perf_counter(); f(); t[n].append(time.perf_counter() - t0)
for n, v in t.items(): print(n, "best %.2f ms med %.2f" % (min(v) * 1e3, sorted(v)[len(v) // 2] * 1e3))
