"""A/B of two changes to linear_fwd's C++ backward, each with an experiment-only switch in the
extension built for it (variable set to 1: the old code; unset: the new):

* ASID_OLD_GATE_BWD: the gate's backward (ESA's x * sigmoid(conv4(...))): old, sigmoid, four
  products, a negation and an addition, each a new map; new, sigmoid in place of the recomputed
  pre, two products, sigmoid_backward in place;
* ASID_OLD_DX: the input gradients: old, at::matmul into a new map; new, the linear_fwd op
  itself (its GEMM and its output cache) with the transposed weight.

Both variants in one process, switched every round: the linear alone (forward + backward at
ESA's training shape, gated for the gate switch, 48 -> 48 with a residual for the dx switch) and
the whole x2 training step (batch 16 of 64x64, L1, Adam). Run from the repository root:

    OMP_WAIT_POLICY=PASSIVE python bench/results/20261204c_cpu/linear_backward_ab.py SWITCH ROUNDS
"""
import os
import sys
import time

import torch

from asid_fast import ops
from asid_fast.model import ASID

torch.set_num_threads(2)
SWITCH = sys.argv[1]
rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 7


def linear_alone():
    torch.manual_seed(0)
    gated = SWITCH == "ASID_OLD_GATE_BWD"
    f = torch.randn(16, 64, 64, 12 if gated else 48, requires_grad=True)
    x = torch.randn(16, 64, 64, 48, requires_grad=True)
    w = torch.randn(48, f.shape[-1], requires_grad=True)
    b = torch.randn(48, requires_grad=True)
    g = torch.randn(16, 64, 64, 48)

    def run():
        if gated:
            ops.linear([f], w, b, gate=x).backward(g)
        else:
            ops.linear([f], w, b, x).backward(g)
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
    """The linear's gradients under ``variant``: the two formulas must agree."""
    os.environ[SWITCH] = variant
    torch.manual_seed(1)
    f, x = torch.randn(2, 8, 8, 12, requires_grad=True), torch.randn(2, 8, 8, 48, requires_grad=True)
    w, b = torch.randn(48, 12, requires_grad=True), torch.randn(48, requires_grad=True)
    ops.linear([f], w, b, gate=x).backward(torch.randn(2, 8, 8, 48))
    return [t.grad for t in (f, x, w, b)]


diff = max((a - b).abs().max().item() for a, b in zip(grads("1"), grads("0")))
print(f"{SWITCH}; torch {torch.__version__}; gradients old vs new: max abs diff {diff:.2e}")
for name, make in (("linear alone fwd+bwd 16x64x64", linear_alone),
                   ("x2 training step b16 64x64", train_step)):
    run = make()
    times = {"old": [], "new": []}
    for r in range(rounds + 1):
        for label, flag in (("old", "1"), ("new", "0")) if r % 2 else (("new", "0"), ("old", "1")):
            os.environ[SWITCH] = flag
            t = time.perf_counter()
            run()
            if r:  # round 0 warms up
                times[label].append((time.perf_counter() - t) * 1e3)
    old, new = sorted(times["old"]), sorted(times["new"])
    print(f"{name}: old best {old[0]:.1f} median {old[len(old) // 2]:.1f} ms, new best "
          f"{new[0]:.1f} median {new[len(new) // 2]:.1f} ms; old/new best "
          f"{old[0] / new[0]:.3f}, median {old[len(old) // 2] / new[len(new) // 2]:.3f}",
          flush=True)
