"""A/B in one process: traced x4 replays of 64x64 tiles (what `asid-fast upscale` and `eval` run
after their first forwards of a tile shape) called in inference mode, replaying outside it (the
former GraphCache) against in it (replay_in_inference_mode), the two alternating call by call
with their order swapped every round. Batch 1 and batch 8 (--batch 8). Checks the same output
bits; prints best, median and the median of the paired ratios (outside / inside).
Usage: python replay_ab.py [ROUNDS]"""
import statistics
import sys
import time

import torch

from asid_fast.model import ASID
from asid_fast.traced import TracedModel


def main(rounds=40):
    torch.set_num_threads(2)
    torch.manual_seed(0)
    model = ASID(4).eval()
    for batch in (1, 8):
        runner = TracedModel(model)
        x = torch.rand(batch, 3, 64, 64)
        outs, times = {}, {False: [], True: []}
        with torch.inference_mode():
            for flag in (False, True):
                runner.cache._replay_in_inference_mode = flag
                runner(x)
                outs[flag] = runner(x)
            for r in range(rounds):
                for flag in (False, True) if r % 2 == 0 else (True, False):
                    runner.cache._replay_in_inference_mode = flag
                    t = time.perf_counter()
                    runner(x)
                    times[flag].append(time.perf_counter() - t)
        a, b = times[False], times[True]
        paired = statistics.median(p / q for p, q in zip(a, b))
        print(f"batch {batch}: same bits {torch.equal(outs[False], outs[True])} | outside best "
              f"{min(a) * 1e3:.1f} med {statistics.median(a) * 1e3:.1f} ms | inside best "
              f"{min(b) * 1e3:.1f} med {statistics.median(b) * 1e3:.1f} ms | best ratio "
              f"{min(a) / min(b):.3f} paired median {paired:.3f}", flush=True)


if __name__ == "__main__":
    main(*(int(v) for v in sys.argv[1:2]))
