"""The x2 training step (../20261205b_cpu/split_ab.py: batch 16 of 64x64, L1 + Adam) under
ASID_Q = o and f of the throwaway build (queue_switch.patch), alternating step by step in one
process (queue_ab.py's loop and report): checks that both give the same gradient bits, then
prints best, median and the median of the paired ratios. Usage: python queue_train_ab.py ROUNDS"""
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "20261205b_cpu"))
from queue_ab import alternate, report  # noqa: E402
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
    step()
    report("train", cands, alternate("ASID_Q", cands, step, rounds))


if __name__ == "__main__":
    main(int(sys.argv[1]))
