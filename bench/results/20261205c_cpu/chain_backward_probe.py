"""Time one conv_chain backward (torch.autograd.grad of the fused op, batch 16 of 64x64) for the
x2 model's chains: "gfn" (LayerNorm, 48 -> 96, dw 3x3, GELU gate, 48 -> 48 + residual), "ca"
(LayerNorm, 48 -> 48, dw 3x3: a channel attention's q, k or v) or "lm" (36 -> 36 + bias, GELU,
dw 3x3 + bias, GELU). Run under `perf record` to see where the backward spends its time.

    OMP_WAIT_POLICY=PASSIVE python chain_backward_probe.py gfn 20
"""
import sys
import time

import torch

from asid_fast.ops import conv_chain

torch.set_num_threads(2)
gen = torch.Generator().manual_seed(0)


def param(*shape):
    return (torch.randn(*shape, generator=gen) * 0.1).requires_grad_()


def chain(kind):
    """(x, w_in, dw, keyword arguments) of one chain of the x2 model."""
    if kind == "gfn":
        return (param(16, 64, 64, 48), param(96, 48), param(96, 1, 3, 3),
                dict(norm=(param(48), param(48), 1e-6), epilogue="gate", w_out=param(48, 48)))
    if kind == "ca":
        return (param(16, 64, 64, 48), param(48, 48), param(48, 1, 3, 3),
                dict(norm=(param(48), param(48), 1e-6)))
    return (param(16, 64, 64, 36), param(36, 36), param(36, 1, 3, 3),
            dict(b_in=param(36), gelu_in=True, b_dw=param(36), epilogue="gelu"))


def main():
    kind, n = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 20
    x, w_in, dw, kwargs = chain(kind)
    out = conv_chain(x, w_in, dw, **kwargs)
    grad = torch.randn(out.shape, generator=gen)
    inputs = [x, w_in, dw] + [t for v in kwargs.values()
                              for t in (v if isinstance(v, tuple) else (v,))
                              if isinstance(t, torch.Tensor)]

    def backward():
        torch.autograd.grad(out, inputs, grad, retain_graph=True)
    backward()
    t0 = time.perf_counter()
    for _ in range(n):
        backward()
    print(f"{kind} {tuple(out.shape)}: {(time.perf_counter() - t0) / n * 1e3:.2f} ms per backward")


if __name__ == "__main__":
    main()
