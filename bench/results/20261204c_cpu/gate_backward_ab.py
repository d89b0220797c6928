"""A/B of linear_fwd's gate backward (ESA's x * sigmoid(conv4(...))): ASID_OLD_GATE_BWD=1 selects
the old formula (sigmoid, four products, a negation and an addition, each a new map) in the
extension built for this experiment, unset the new one (sigmoid in place of the recomputed pre,
two products, sigmoid_backward in place). Both in one process, switched every round: the gated
linear alone (forward + backward at ESA's training shape) and the whole x2 training step (batch
16 of 64x64, L1, Adam). Run from the repository root:

    OMP_WAIT_POLICY=PASSIVE python bench/results/20261204c_cpu/gate_backward_ab.py ROUNDS
"""
import os
import sys
import time

import torch

from asid_fast import ops
from asid_fast.model import ASID

torch.set_num_threads(2)
rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 7


def gated_linear():
    torch.manual_seed(0)
    f = torch.randn(16, 64, 64, 12, requires_grad=True)
    x = torch.randn(16, 64, 64, 48, requires_grad=True)
    w = torch.randn(48, 12, requires_grad=True)
    b = torch.randn(48, requires_grad=True)
    g = torch.randn(16, 64, 64, 48)

    def run():
        ops.linear([f], w, b, gate=x).backward(g)
    return run


def train_step():
    torch.manual_seed(0)
    model = ASID(2, "asid")
    x, target = torch.rand(16, 3, 64, 64), torch.rand(16, 3, 128, 128)
    optimizer = torch.optim.Adam(model.parameters(), 1e-4)

    def run():
        optimizer.zero_grad(set_to_none=True)
        (model(x) - target).abs().mean().backward()
        optimizer.step()
    return run


def grads(variant):
    """The gated linear's gradients under ``variant``: the two formulas must agree."""
    os.environ["ASID_OLD_GATE_BWD"] = variant
    torch.manual_seed(1)
    f, x = torch.randn(2, 8, 8, 12, requires_grad=True), torch.randn(2, 8, 8, 48, requires_grad=True)
    w, b = torch.randn(48, 12, requires_grad=True), torch.randn(48, requires_grad=True)
    ops.linear([f], w, b, gate=x).backward(torch.randn(2, 8, 8, 48))
    return [t.grad for t in (f, x, w, b)]


diff = max((a - b).abs().max().item() for a, b in zip(grads("1"), grads("0")))
print(f"torch {torch.__version__}; gradients old vs new: max abs diff {diff:.2e}")
for name, make in (("gated linear fwd+bwd 16x64x64x12 -> 48", gated_linear),
                   ("x2 training step b16 64x64", train_step)):
    run = make()
    times = {"old": [], "new": []}
    for r in range(rounds + 1):
        for label, flag in (("old", "1"), ("new", "0")) if r % 2 else (("new", "0"), ("old", "1")):
            os.environ["ASID_OLD_GATE_BWD"] = flag
            t = time.perf_counter()
            run()
            if r:  # round 0 warms up
                times[label].append((time.perf_counter() - t) * 1e3)
    old, new = sorted(times["old"]), sorted(times["new"])
    print(f"{name}: old best {old[0]:.1f} median {old[len(old) // 2]:.1f} ms, new best "
          f"{new[0]:.1f} median {new[len(new) // 2]:.1f} ms; old/new best "
          f"{old[0] / new[0]:.3f}, median {old[len(old) // 2] / new[len(new) // 2]:.3f}",
          flush=True)
