"""Fused and reference ASID x4 on 1x3x16x16 and 1x3x64x64 inputs, interleaved twice, min and
median of 25 calls: what a forward costs when the map is tiny (argv[1]: threads)."""
import time, torch, sys
from asid_fast.model import ASID
from asid_fast.reference import ASID as RefASID
torch.set_num_threads(int(sys.argv[1]))
m = ASID(4, "asid").eval(); r = RefASID(4, "asid").eval(); r.load_state_dict(m.state_dict())
for hw in [(16, 16), (64, 64)]:
    x = torch.rand(1, 3, *hw)
    with torch.no_grad():
        for name, mod in [("fused", m), ("reference", r)] * 2:
            for _ in range(3): mod(x)
            ts = []
            for _ in range(25):
                a = time.perf_counter(); mod(x); ts.append(time.perf_counter() - a)
            print(sys.argv[1], hw, name, "min %.1f ms median %.1f" % (min(ts) * 1e3, sorted(ts)[12] * 1e3))
