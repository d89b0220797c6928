"""The AVX2 against the AVX-512 build of the CPU kernels by channel width d: the linear op
(d -> d with bias and residual) and a gated-FFN conv_chain (LayerNorm, d -> 2d, depthwise 3x3,
GELU gate, d -> d, residual), forward and backward on 16 x 64 x 64 x d, builds switched with
asid_fast._C.set_cpu_isa in alternating rounds; best of 3 rounds x 3 calls.

    OMP_WAIT_POLICY=PASSIVE python isa_by_width.py
"""
import time

import torch

import asid_fast._C as C
from asid_fast import ops

torch.set_num_threads(2)


def best_ms(f, calls=3):
    f()
    best = float("inf")
    for _ in range(calls):
        t0 = time.perf_counter()
        f()
        best = min(best, time.perf_counter() - t0)
    return best * 1e3


def grads(y, inputs, g):
    torch.autograd.grad(y, inputs, g)


for d in (48, 36, 24, 12):
    def p(*shape):
        return torch.randn(*shape, requires_grad=True)
    x, w, b, w_in, taps, w_out = p(16, 64, 64, d), p(d, d), p(d), p(2 * d, d), p(2 * d, 1, 3, 3), \
        p(d, d)
    norm = (torch.ones(d, requires_grad=True), torch.zeros(d, requires_grad=True), 1e-5)
    g = torch.randn(16, 64, 64, d)
    cases = {
        "linear": lambda: grads(ops.linear([x], w, b, x), (x, w, b), g),
        "gated FFN chain": lambda: grads(
            ops.conv_chain(x, w_in, taps, norm=norm, epilogue="gate", w_out=w_out),
            (x, w_in, taps, w_out), g),
    }
    line = []
    for name, f in cases.items():
        t = {"avx512": [], "avx2": []}
        for _ in range(3):
            for isa in t:
                C.set_cpu_isa(isa)
                t[isa].append(best_ms(f))
        line.append(f"{name} AVX2 {min(t['avx2']):.1f} ms, AVX-512 {min(t['avx512']):.1f} ms "
                    f"(AVX2 / AVX-512 {min(t['avx2']) / min(t['avx512']):.2f})")
    print(f"d {d}: " + "; ".join(line), flush=True)
C.set_cpu_isa("auto")
