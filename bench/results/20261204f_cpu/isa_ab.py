"""A/B of the extension's CPU instruction sets on this machine: the fused ASID x4 forward at
1x3x180x320 (720p out) and the fused x2 training step (4 patches of 64x64, L1, backward, AdamW),
each with the AVX2 and the AVX-512 kernels, interleaved round by round in one process.

    OMP_WAIT_POLICY=PASSIVE OMP_NUM_THREADS=2 python bench/results/20261204f_cpu/isa_ab.py
"""
import statistics
import time

import torch

from asid_fast import _C
from asid_fast.model import ASID

torch.set_num_threads(2)
ISAS = [i for i in ("avx2", "avx512") if i in _C.cpu_isas]


def timed(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def inference():
    torch.manual_seed(0)
    model = ASID(4).eval()
    x = torch.rand(1, 3, 180, 320)

    def run():
        with torch.no_grad():
            model(x)
    return run


def train_step():
    torch.manual_seed(0)
    model = ASID(2).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-6)
    x, y = torch.rand(4, 3, 64, 64), torch.rand(4, 3, 128, 128)

    def run():
        opt.zero_grad(set_to_none=True)
        torch.nn.functional.l1_loss(model(x), y).backward()
        opt.step()
    return run


for name, make, rounds in (("x4 inference 1x3x180x320", inference, 7),
                           ("x2 train step 4x3x64x64", train_step, 7)):
    fn = make()
    times = {isa: [] for isa in ISAS}
    for isa in ISAS:  # warm-up
        _C.set_cpu_isa(isa)
        fn()
    for _ in range(rounds):
        for isa in ISAS:
            _C.set_cpu_isa(isa)
            times[isa].append(timed(fn) * 1e3)
    for isa in ISAS:
        t = times[isa]
        print(f"{name}  {isa:7s} best {min(t):8.1f} ms  median {statistics.median(t):8.1f} ms")
    if len(ISAS) == 2:
        a, b = (min(times[i]) for i in ISAS)
        print(f"{name}  avx512 / avx2 best: {b / a:.3f}")
_C.set_cpu_isa("auto")
