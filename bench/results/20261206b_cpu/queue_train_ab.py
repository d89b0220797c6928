"""The x2 training step (../20261205b_cpu/split_ab.py: batch 16 of 64x64, L1 + Adam) under
ASID_Q = o and f of the throwaway build (queue_switch.patch), alternating step by step in one
process: checks that both give the same gradient bits, then prints best, median and the median
of the paired ratios. Usage: python queue_train_ab.py ROUNDS"""
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "20261205b_cpu"))
from split_ab import training_step  # noqa: E402


def main(rounds):
    cands = ("o", "f")
    model, step, loss_backward = training_step()
    grads = {}
    for c in cands:
        os.environ["ASID_Q"] = c
        loss_backward()
        grads[c] = [p.grad.clone() for p in model.parameters()]
    print("gradients identical:", all(torch.equal(a, b) for a, b in zip(*grads.values())))
    times = {c: [] for c in cands}
    step()
    for r in range(rounds):
        for c in cands if r % 2 == 0 else cands[::-1]:
            os.environ["ASID_Q"] = c
            t = time.perf_counter()
            step()
            times[c].append(time.perf_counter() - t)
    a, b = times["o"], times["f"]
    paired = statistics.median(p / q for p, q in zip(a, b))
    print(f"train o best {min(a) * 1e3:.0f} med {statistics.median(a) * 1e3:.0f} | f best "
          f"{min(b) * 1e3:.0f} med {statistics.median(b) * 1e3:.0f} | best ratio "
          f"{min(a) / min(b):.3f} paired median {paired:.3f}")


if __name__ == "__main__":
    main(int(sys.argv[1]))
