"""Where the fused x2 training step (batch 16 of 64x64, L1 + Adam) spends time outside the
project's kernels: every ATen call on a tensor of more than 100 thousand elements, timed one by
one under a TorchDispatchMode (which slows the step, so read the sums as upper bounds), and the
garbage collector's collections per generation over 10 plain steps.

    OMP_WAIT_POLICY=PASSIVE python aten_time.py
"""
import collections
import gc
import os
import sys
import time

import torch
from torch.utils._python_dispatch import TorchDispatchMode

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "20261205b_cpu"))
from split_ab import training_step  # noqa: E402


class TimeBigOps(TorchDispatchMode):
    """Sums the wall time of ATen calls whose first tensor argument is large, by op and shape."""

    def __init__(self):
        super().__init__()
        self.ms, self.calls = collections.Counter(), collections.Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        first = args[0] if args else None
        if isinstance(first, (list, tuple)) and first and isinstance(first[0], torch.Tensor):
            key = (str(func), "list of " + str([tuple(t.shape) for t in first]))
            big = first[0].numel() > 100_000
        else:
            key = (str(func), tuple(first.shape) if isinstance(first, torch.Tensor) else None)
            big = isinstance(first, torch.Tensor) and first.numel() > 100_000
        if not big:
            return func(*args, **(kwargs or {}))
        t0 = time.perf_counter()
        out = func(*args, **(kwargs or {}))
        self.ms[key] += (time.perf_counter() - t0) * 1e3
        self.calls[key] += 1
        return out


def main():
    _, step, _ = training_step()
    step()
    step()
    for _ in range(2):
        mode = TimeBigOps()
        t0 = time.perf_counter()
        with mode:
            step()
        print(f"instrumented step {(time.perf_counter() - t0) * 1e3:.0f} ms, large ATen calls "
              f"{sum(mode.ms.values()):.0f} ms")
    for (op, shape), ms in mode.ms.most_common(20):
        print(f"{ms:7.1f} ms {mode.calls[op, shape]:3d} calls  {op} {shape}")

    took, count, start = collections.Counter(), collections.Counter(), [0.0]

    def on_gc(phase, info):
        if phase == "start":
            start[0] = time.perf_counter()
        else:
            took[info["generation"]] += time.perf_counter() - start[0]
            count[info["generation"]] += 1
    gc.callbacks.append(on_gc)
    t0 = time.perf_counter()
    for _ in range(10):
        step()
    print(f"10 plain steps, {(time.perf_counter() - t0) * 100:.0f} ms each; collections: "
          + ", ".join(f"generation {g}: {count[g]} ({took[g] * 1e3:.1f} ms in all)"
                      for g in sorted(count))
          + f"; {len(gc.get_objects())} objects tracked")


if __name__ == "__main__":
    main()
