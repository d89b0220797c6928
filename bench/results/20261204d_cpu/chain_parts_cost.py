"""What LayerNorm and the depthwise convolution add to a conv chain (K = 48 -> N channels, one
thread, 184x320): the projection alone, with the depthwise conv, each with and without the
LayerNorm, and the depthwise op alone on an N-channel map. Run from the repository root:

    OMP_WAIT_POLICY=PASSIVE python bench/results/20261204d_cpu/chain_parts_cost.py 1 96
"""
import sys
import time

import torch

from asid_fast import ops

torch.set_num_threads(int(sys.argv[1]))
K, N = 48, int(sys.argv[2])
x, y = torch.randn(1, 184, 320, K), torch.randn(1, 184, 320, N)
norm = (torch.rand(K) + 0.5, torch.randn(K), 1e-6)
w, w_dw = torch.randn(N, K) * 0.1, torch.randn(N, 1, 3, 3) * 0.1
cases = {
    "proj": lambda: ops.conv_chain(x, w, None, norm=norm, backend="cpu"),
    "proj+dw": lambda: ops.conv_chain(x, w, w_dw, norm=norm, backend="cpu"),
    "noln proj": lambda: ops.conv_chain(x, w, None, backend="cpu"),
    "noln proj+dw": lambda: ops.conv_chain(x, w, w_dw, backend="cpu"),
    "dw alone": lambda: ops.depthwise_conv3x3(y, w_dw, backend="cpu"),
}
times = {k: [] for k in cases}
for _ in range(30):
    for k, fn in cases.items():
        start = time.perf_counter()
        fn()
        times[k].append(time.perf_counter() - start)
for k in cases:
    print(f"{k:14s} {min(times[k]) * 1e3:6.2f} ms  {min(times[k]) / (184 * 320) * 1e9:6.1f} ns/px")
