"""A/B in one process: the fused x2 training step (batch 16 of 64x64, L1 + Adam) with the IDB's
channel splits as two slices each (the old _idb) against one torch.split each (model._idb).
Rounds alternate the candidates' order; prints best and median ms per candidate."""
import statistics
import sys
import time

import torch
import torch.nn.functional as F

from asid_fast import model as M
from asid_fast.ops import linear


def slices_idb(idb, x, attns, backend):
    c = idb.c
    x = M._local_module(idb.LB1, x, backend)
    y, a12 = M._sam(idb, 1, x[..., c:], attns, backend)
    x = linear([y, x[..., :c]], M._w(idb.pw1), idb.pw1.bias, backend=backend)
    x1 = x[..., :c]
    x = M._local_module(idb.LB2, x[..., c:], backend)
    y, a34 = M._sam(idb, 2, x[..., c:], attns, backend)
    x = linear([y, x[..., :c]], M._w(idb.pw2), idb.pw2.bias, backend=backend)
    x2 = x[..., :c]
    x = M._local_module(idb.LB3, x[..., c:], backend)
    y, a56 = M._sam(idb, 3, x[..., c:], attns, backend)
    x = linear([x1, x2, y, x[..., :c]], M._w(idb.pw3), idb.pw3.bias, backend=backend)
    return M._cam(idb.BlockC, x, backend), a12 + a34 + a56


def training_step(backend="auto"):
    """The fused x2 model (op backend ``backend``) and one training step of it (batch 16 of 64x64,
    L1 + Adam) on fixed data: (model, step, loss_backward)."""
    torch.set_num_threads(2)
    torch.manual_seed(0)
    m = M.ASID(2, "asid", backend=backend).train()
    opt = torch.optim.Adam(m.parameters(), lr=1e-4)
    g = torch.Generator().manual_seed(2)
    x = torch.rand(16, 3, 64, 64, generator=g)
    t = torch.rand(16, 3, 128, 128, generator=g)

    def loss_backward():
        opt.zero_grad(set_to_none=True)
        F.l1_loss(m(x), t).backward()

    def step():
        loss_backward()
        opt.step()
    return m, step, loss_backward


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    m, step, loss_backward = training_step()
    cands = {"slices": slices_idb, "split": M._idb}
    grads = {}
    for name, f in cands.items():  # same gradients from both
        M._idb = f
        loss_backward()
        grads[name] = [p.grad.clone() for p in m.parameters()]
    print("max grad difference:", max((a - b).abs().max().item()
                                      for a, b in zip(grads["slices"], grads["split"])))
    times = {n: [] for n in cands}
    for r in range(rounds):
        order = list(cands) if r % 2 == 0 else list(cands)[::-1]
        for name in order:
            M._idb = cands[name]
            step()
            t0 = time.perf_counter()
            step()
            times[name].append((time.perf_counter() - t0) * 1e3)
    for n, ts in times.items():
        print(f"{n}: best {min(ts):.1f} ms, median {statistics.median(ts):.1f} ms")
    b, s = times["slices"], times["split"]
    print(f"slices / split: best {min(b) / min(s):.3f}, median "
          f"{statistics.median(b) / statistics.median(s):.3f}")


if __name__ == "__main__":
    main()
