"""Page faults in the CPU training step: glibc returns freed large blocks to the OS (mmap'd
blocks, heap trimming), so fresh activation maps fault in their pages again at every step. A/B
in one process: glibc's defaults vs mallopt(M_MMAP_THRESHOLD = M_TRIM_THRESHOLD = 1 GiB) (freed
memory stays in the heap), switched every round, for the fused and the reference x2 training
steps (batch 16 of 64x64, L1, Adam). Minor page faults per step from getrusage. Run from the
repository root:

    OMP_WAIT_POLICY=PASSIVE python bench/results/20261204c_cpu/malloc_train_ab.py ROUNDS
"""
import ctypes
import resource
import sys
import time

import torch

from asid_fast.model import ASID
from asid_fast.reference import ASID as ReferenceASID

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
LIBC = ctypes.CDLL("libc.so.6")
DEFAULT = {M_TRIM_THRESHOLD: 128 * 1024, M_MMAP_THRESHOLD: 128 * 1024}  # glibc's start values
KEEP = {M_TRIM_THRESHOLD: 1 << 30, M_MMAP_THRESHOLD: 1 << 30}

torch.set_num_threads(2)
rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 5


def step_of(model):
    torch.manual_seed(0)
    x, target = torch.rand(16, 3, 64, 64), torch.rand(16, 3, 128, 128)
    optimizer = torch.optim.Adam(model.parameters(), 1e-4)

    def run():
        optimizer.zero_grad(set_to_none=True)
        (model(x) - target).abs().mean().backward()
        optimizer.step()
    return run


torch.manual_seed(0)
reference = ReferenceASID(2)
fused = ASID(2)
fused.load_state_dict(reference.state_dict())
steps = {"fused": step_of(fused), "reference": step_of(reference)}
results = {(m, a): [] for m in steps for a in ("default", "keep")}
for r in range(rounds + 1):
    for alloc in ("default", "keep") if r % 2 else ("keep", "default"):
        for option, value in (DEFAULT if alloc == "default" else KEEP).items():
            LIBC.mallopt(option, value)
        LIBC.malloc_trim(0)
        for name, run in steps.items():
            run()  # one step to settle the allocator in this mode
            faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            t = time.perf_counter()
            run()
            ms = (time.perf_counter() - t) * 1e3
            if r:
                results[name, alloc].append(
                    (ms, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults))
print(f"torch {torch.__version__}; ms per step (best, median) and minor page faults per step")
for (name, alloc), rows in results.items():
    ms = sorted(m for m, _ in rows)
    print(f"{name:9s} {alloc:7s} best {ms[0]:7.1f} median {ms[len(ms) // 2]:7.1f} ms, "
          f"faults {sorted(f for _, f in rows)[len(rows) // 2]}")
for alloc in ("default", "keep"):
    f = sorted(m for m, _ in results["fused", alloc])
    g = sorted(m for m, _ in results["reference", alloc])
    print(f"{alloc}: reference / fused best {g[0] / f[0]:.3f}, median "
          f"{g[len(g) // 2] / f[len(f) // 2]:.3f}")
