"""What one fused-op call costs on a 1-pixel map (1 thread), layer by layer: the Python wrapper
(asid_fast.ops), the registered op (torch.ops, with the autograd layer), and the C++ entry
alone (redispatch to the CPU key); F.linear beside them. Min and median of 7 rounds of 500."""
import time, torch
torch.set_num_threads(1)
from asid_fast import ops
x = torch.randn(1, 1, 1, 48); wd = torch.randn(96, 1, 3, 3); wi = torch.randn(96, 48); wo = torch.randn(48, 48); nw, nb = torch.randn(48), torch.randn(48)
w48 = torch.randn(48, 48); b48 = torch.randn(48)
ks = torch._C.DispatchKeySet(torch._C.DispatchKey.CPU)
cc = torch.ops.asid_fast.conv_chain_fwd.default; lf = torch.ops.asid_fast.linear_fwd.default
cases = {
 "cc wrapper": lambda: ops.conv_chain(x, wi, wd, norm=(nw, nb, 1e-6), epilogue="gate", w_out=wo),
 "cc torch.ops": lambda: cc(x, nw, nb, 1e-6, wi, None, False, wd, None, "gate", wo),
 "cc C++": lambda: cc.redispatch(ks, x, nw, nb, 1e-6, wi, None, False, wd, None, "gate", wo),
 "lin wrapper": lambda: ops.linear([x], w48, b48),
 "lin torch.ops": lambda: lf([x], w48, b48, None),
 "lin C++": lambda: lf.redispatch(ks, [x], w48, b48, None),
 "F.linear": lambda: torch.nn.functional.linear(x, w48, b48),
}
res = {k: [] for k in cases}
with torch.no_grad():
  for r in range(7):
    for k, f in cases.items():
        for _ in range(20): f()
        t = time.perf_counter()
        for _ in range(500): f()
        res[k].append((time.perf_counter() - t) / 500 * 1e6)
for k, v in res.items(): print("%-14s min %.1f us  median %.1f" % (k, min(v), sorted(v)[3]))
