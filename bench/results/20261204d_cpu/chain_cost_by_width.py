"""Per-pixel cost of the gated-FFN conv chain (LayerNorm, K -> 2K projection, depthwise 3x3,
GELU gate, K -> K projection, residual) against its width K, one thread, at a 184x320 map:
fitting t(K) = a + b K + c K^2 separates the GEMMs (c K^2) from the per-channel work (b K:
depthwise conv, LayerNorm, gate, residual). Run from the repository root:

    OMP_WAIT_POLICY=PASSIVE python bench/results/20261204d_cpu/chain_cost_by_width.py [threads]
"""
import sys
import time

import torch

from asid_fast import ops

torch.set_num_threads(int(sys.argv[1]) if len(sys.argv) > 1 else 1)
PIXELS = 184 * 320
cases = {}
for k in (48, 40, 36, 32, 24, 12):
    x = torch.randn(1, 184, 320, k)
    norm = (torch.rand(k) + 0.5, torch.randn(k), 1e-6)
    w_in, w_dw = torch.randn(2 * k, k) * 0.1, torch.randn(2 * k, 1, 3, 3) * 0.1
    w_out = torch.randn(k, k) * 0.1
    flops = PIXELS * (2 * k * 2 * k + 18 * 2 * k + 2 * k * k)
    cases[k] = (lambda x=x, norm=norm, w_in=w_in, w_dw=w_dw, w_out=w_out: ops.conv_chain(
        x, w_in, w_dw, norm=norm, epilogue="gate", w_out=w_out, backend="cpu"), flops)
times = {k: [] for k in cases}
for _ in range(25):  # interleaved rounds, best of each
    for k, (fn, _) in cases.items():
        start = time.perf_counter()
        fn()
        times[k].append(time.perf_counter() - start)
for k, (_, flops) in cases.items():
    best = min(times[k])
    print(f"gate K={k}: {best * 1e3:.2f} ms {flops / best / 1e9:.0f} GFLOP/s "
          f"{best / PIXELS * 1e9:.0f} ns/px")
