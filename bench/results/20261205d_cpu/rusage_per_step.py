"""Wall, user and system time and minor page faults of single fused x2 training steps (batch 16
of 64x64, L1 + Adam), from getrusage, after three warm-up steps.

    OMP_WAIT_POLICY=PASSIVE python rusage_per_step.py
"""
import os
import resource
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "20261205b_cpu"))
from split_ab import training_step  # noqa: E402

_, step, _ = training_step()
for _ in range(3):
    step()
for _ in range(8):
    r0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    step()
    r1, wall = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter() - t0
    print(f"wall {wall * 1e3:.0f} ms, user {(r1.ru_utime - r0.ru_utime) * 1e3:.0f} ms, "
          f"system {(r1.ru_stime - r0.ru_stime) * 1e3:.0f} ms, "
          f"minor faults {r1.ru_minflt - r0.ru_minflt}")
