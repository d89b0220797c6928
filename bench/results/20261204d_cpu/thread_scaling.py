"""One thread against two, interleaved in one process: a gated conv chain (K = 48), the linear
op as a plain 48 -> 96 GEMM, torch's own GEMM of that shape and a square sgemm. Run from the
repository root:

    OMP_WAIT_POLICY=PASSIVE python bench/results/20261204d_cpu/thread_scaling.py
"""
import time

import torch

from asid_fast import ops

K = 48
x = torch.randn(1, 184, 320, K)
norm = (torch.rand(K) + 0.5, torch.randn(K), 1e-6)
w_in, w_dw, w_out = torch.randn(2 * K, K) * 0.1, torch.randn(2 * K, 1, 3, 3) * 0.1, \
    torch.randn(K, K) * 0.1
xm, wm, a = torch.randn(58880, 48), torch.randn(48, 96), torch.randn(1024, 1024)
cases = {
    "chain": lambda: ops.conv_chain(x, w_in, w_dw, norm=norm, epilogue="gate", w_out=w_out,
                                    backend="cpu"),
    "ours_gemm": lambda: ops.linear([x], w_in, None, backend="cpu"),
    "torch_skinny": lambda: xm @ wm,
    "sgemm1024": lambda: a @ a,
}
times = {(k, t): [] for k in cases for t in (1, 2)}
for _ in range(30):
    for k, fn in cases.items():
        for t in (1, 2):
            torch.set_num_threads(t)
            start = time.perf_counter()
            fn()
            times[(k, t)].append(time.perf_counter() - start)
for k in cases:
    one, two = min(times[(k, 1)]), min(times[(k, 2)])
    print(f"{k}: 1 thread {one * 1e3:.2f} ms, 2 threads {two * 1e3:.2f} ms, "
          f"scaling {one / two:.2f}")
