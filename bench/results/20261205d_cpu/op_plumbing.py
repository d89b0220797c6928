"""The cost of an op call's Python, dispatch and autograd plumbing: conv_chain (autograd through
torch.library's register_autograd) and linear (a C++ autograd function) on a 1x4x4x48 input,
where the kernels do no work; forward + backward and forward alone, best of 5 x 200 calls.

    OMP_WAIT_POLICY=PASSIVE python op_plumbing.py
"""
import time

import torch

from asid_fast import ops

torch.set_num_threads(2)
x = torch.randn(1, 4, 4, 48, requires_grad=True)
w_in, taps = torch.randn(96, 48, requires_grad=True), torch.randn(96, 1, 3, 3, requires_grad=True)
b_in = torch.randn(96, requires_grad=True)
w, b = torch.randn(48, 48, requires_grad=True), torch.randn(48, requires_grad=True)


def conv_chain():
    return ops.conv_chain(x, w_in, taps, b_in=b_in, gelu_in=True, epilogue="gelu")


def linear():
    return ops.linear([x], w, b, x)


for name, op in (("conv_chain", conv_chain), ("linear", linear)):
    def forward_backward():
        op().sum().backward()

    def forward():
        with torch.no_grad():
            op()
    for part, f in (("forward + backward", forward_backward), ("forward", forward)):
        for _ in range(50):
            f()
        best = float("inf")
        for _ in range(5):
            t0 = time.perf_counter()
            for _ in range(200):
                f()
            best = min(best, (time.perf_counter() - t0) / 200)
        print(f"{name} {part}: {best * 1e6:.0f} us")
