"""A/B in one process on the shipped build: x4 tiles replayed from a plain trace
(torch.jit.trace, as asid_fast.traced makes them) against the same trace frozen
(torch.jit.freeze, optimize_numerics=False; tried, not kept), both in inference mode,
alternating call by call with the order swapped every round. Checks the same bits as the
model's forward; prints best ms and the median of paired ratios plain / frozen.
Usage: python freeze_ab.py ROUNDS BxS [BxS ...]"""
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(__file__))
from fixed_ab import traces, x4_model  # noqa: E402


def main(rounds, cases):
    model = x4_model()
    for case in cases:
        shape, plain, frozen = traces(model, case)
        x = torch.rand(shape)
        times = {"plain": [], "frozen": []}
        with torch.inference_mode(), torch.jit.optimized_execution(False):
            ref = model(x)
            assert torch.equal(plain(x), ref) and torch.equal(frozen(x), ref)
            for r in range(rounds):
                for name in ("plain", "frozen") if r % 2 == 0 else ("frozen", "plain"):
                    fn = plain if name == "plain" else frozen
                    t = time.perf_counter()
                    fn(x)
                    times[name].append(time.perf_counter() - t)
        a, b = times["plain"], times["frozen"]
        print(f"{case}: same bits | plain {min(a) * 1e3:.2f} ms | frozen {min(b) * 1e3:.2f} ms | "
              f"best ratio {min(a) / min(b):.3f} | paired median "
              f"{statistics.median(p / q for p, q in zip(a, b)):.3f}", flush=True)


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2:])
