"""Whole-model A/B in one process of two settings of an environment variable that a throwaway
build reads at each op call (queue_switch.patch: ASID_Q = o, b or f, see NOTES.md). Fused x4
inference on a 1x3xHxW input (H, W from the environment, default 180 x 320), the two settings
alternating call by call, their order swapped every round; checks that both give the same
output bits, then prints each setting's best and median and the median of the paired ratios.
Usage: [H=64 W=64] python queue_ab.py VARIABLE ROUNDS A B"""
import os
import statistics
import sys
import time

import torch

from asid_fast.model import ASID


def alternate(var, cands, fn, rounds):
    """Seconds per call of fn() under each setting of ``var``, alternating call by call."""
    times = {c: [] for c in cands}
    for r in range(rounds):
        for c in cands if r % 2 == 0 else cands[::-1]:
            os.environ[var] = c
            t = time.perf_counter()
            fn()
            times[c].append(time.perf_counter() - t)
    return times


def report(label, cands, times):
    a, b = (times[c] for c in cands)
    paired = statistics.median(p / q for p, q in zip(a, b))
    print(f"{label}: {cands[0]} best {min(a) * 1e3:.0f} med {statistics.median(a) * 1e3:.0f} | "
          f"{cands[1]} best {min(b) * 1e3:.0f} med {statistics.median(b) * 1e3:.0f} | "
          f"best ratio {min(a) / min(b):.3f} paired median {paired:.3f}", flush=True)


def main(var, rounds, cands):
    torch.set_num_threads(2)
    torch.manual_seed(0)
    model = ASID(4).eval()
    x = torch.rand(1, 3, int(os.environ.get("H", 180)), int(os.environ.get("W", 320)))
    with torch.no_grad():
        outs = []
        for c in cands:
            os.environ[var] = c
            outs.append(model(x))
        print("outputs identical:", torch.equal(*outs))
        times = alternate(var, cands, lambda: model(x), rounds)
    report(var, cands, times)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), tuple(sys.argv[3:5]))
