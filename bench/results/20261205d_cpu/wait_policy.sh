#!/usr/bin/env bash
# The fused model under OMP_WAIT_POLICY=PASSIVE (the project's timing rule: torch's worker
# thread sleeps between parallel regions) and ACTIVE (it spins), in alternating processes, 2
# threads: the x2 training step (batch 16 of 64x64, L1 + Adam; mean of 5 after 2) and x4
# 1x3x180x320 inference (mean of 6 after 2). What waking the worker costs per parallel region.
#     bash wait_policy.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
train='
import sys, time
sys.path.insert(0, "'"$here"'/../20261205b_cpu")
from split_ab import training_step
_, step, _ = training_step()
f, n = step, 5'
infer='
import torch
from asid_fast.model import ASID
torch.set_num_threads(2)
model, x = ASID(4, "asid").eval(), torch.rand(1, 3, 180, 320)
def f():
    with torch.no_grad():
        model(x)
n = 6'
timing='
import time
f(); f()
t0 = time.perf_counter()
for _ in range(n):
    f()
print(f"{(time.perf_counter() - t0) / n * 1e3:.0f} ms")'
for case in train infer; do
  for round in 1 2 3; do
    for policy in PASSIVE ACTIVE; do
      echo "$case $policy: $(OMP_NUM_THREADS=2 OMP_WAIT_POLICY=$policy python -c "${!case}$timing" 2>&1 | tail -1)"
    done
  done
done
