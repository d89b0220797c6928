"""Fused ASID x4 on 1x3x16x16, one thread, 300 forwards after 5 warm-up ones, to run under
`perf record`; prints the mean ms per forward."""
import torch, time
from asid_fast.model import ASID
torch.set_num_threads(1)
m = ASID(4, "asid").eval(); x = torch.rand(1, 3, 16, 16)
with torch.no_grad():
    for _ in range(5): m(x)
    t = time.perf_counter()
    for _ in range(300): m(x)
    print((time.perf_counter() - t) / 300 * 1e3, "ms")
