"""Fused ASID x4 inference on 1x3x180x320 with one thread (1 warm-up + 4 calls), to run under
`perf record`; prints the mean seconds per call."""
import torch, time
from asid_fast.model import ASID
torch.set_num_threads(1)
m = ASID(4, "asid", backend="auto").eval()
x = torch.rand(1, 3, 180, 320)
with torch.no_grad():
    m(x)
    t = time.perf_counter()
    for _ in range(4):
        m(x)
    print((time.perf_counter() - t) / 4)
