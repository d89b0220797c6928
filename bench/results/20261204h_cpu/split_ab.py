"""A/B of the IDB's channel splits in the fused training step: two slicings of one map (each
slice's backward zero-fills a full map, then autograd adds the two) against Tensor.split (whose
backward concatenates the two gradients). Same model, weights and data; the module function
switched between steps, interleaved rounds in one process. Prints best and median step time.

    OMP_WAIT_POLICY=PASSIVE OMP_NUM_THREADS=2 python bench/results/20261204h_cpu/split_ab.py 16 9
"""
import sys
import time

import torch
import torch.nn.functional as F

import asid_fast.model as M
from asid_fast.ops import linear


def split_idb(idb, x, attns, backend):
    c = idb.c

    def split(t):
        return t.split([c, t.shape[-1] - c], -1)
    loc, x = split(M._local_module(idb.LB1, x, backend))
    y, a12 = M._sam(idb, 1, x, attns, backend)
    x1, x = split(linear([y, loc], M._w(idb.pw1), idb.pw1.bias, backend=backend))
    loc, x = split(M._local_module(idb.LB2, x, backend))
    y, a34 = M._sam(idb, 2, x, attns, backend)
    x2, x = split(linear([y, loc], M._w(idb.pw2), idb.pw2.bias, backend=backend))
    loc, x = split(M._local_module(idb.LB3, x, backend))
    y, a56 = M._sam(idb, 3, x, attns, backend)
    x = linear([x1, x2, y, loc], M._w(idb.pw3), idb.pw3.bias, backend=backend)
    return M._cam(idb.BlockC, x, backend), a12 + a34 + a56


torch.set_num_threads(2)
batch, rounds = int(sys.argv[1]), int(sys.argv[2])
torch.manual_seed(0)
model = M.ASID(2, "asid", backend="auto").train()
gen = torch.Generator().manual_seed(2)
x = torch.rand((batch, 3, 64, 64), generator=gen)
target = torch.rand((batch, 3, 128, 128), generator=gen)
VARIANTS = {"slices": M._idb, "split": split_idb}


def step():
    model.zero_grad(set_to_none=True)
    F.l1_loss(model(x), target).backward()


grads = {}
for name, fn in VARIANTS.items():
    M._idb = fn
    step()
    step()
    grads[name] = torch.cat([p.grad.flatten() for p in model.parameters()])
print("gradient max rel diff split vs slices: "
      f"{((grads['split'] - grads['slices']).abs().max() / grads['slices'].abs().max()):.1e}")
times = {name: [] for name in VARIANTS}
for _ in range(rounds):
    for name, fn in VARIANTS.items():
        M._idb = fn
        t0 = time.perf_counter()
        step()
        times[name].append(time.perf_counter() - t0)
ref = sorted(times["slices"])
for name, ts in times.items():
    ts = sorted(ts)
    print(f"{name:7s} best {ts[0] * 1e3:7.1f} ms  median {ts[len(ts) // 2] * 1e3:7.1f} ms  "
          f"slices/this {ref[0] / ts[0]:.3f} / {ref[len(ref) // 2] / ts[len(ts) // 2]:.3f}")
