"""A/B of conv_chain under autograd, forward + backward, at the training step's shapes (batch 16
of 64x64): the CPU op with its fused backward (conv_chain_bwd) against the composition of ops
(layer_norm, matmul, depthwise_conv3x3, addmm), alternated in one process, best of n. The chains
are those ASID calls: gated FFN (d = 48, 36, 24), local module head (48, 36, 24), channel
attention's q/k/v projection (48), window attention's projection (3d = 108). Run from the
repository root:

    OMP_WAIT_POLICY=PASSIVE OMP_NUM_THREADS=2 python bench/results/20261204b_cpu/chain_backward_ab_ops.py [n]
"""
import importlib
import sys
import time

import torch

chain = importlib.import_module("asid_fast.ops.conv_chain")  # the module, not the function
torch.set_num_threads(2)
n = int(sys.argv[1]) if len(sys.argv) > 1 else 7
g = torch.Generator().manual_seed(0)


def r(*shape, scale=1.0):
    return (torch.randn(*shape, generator=g) * scale).requires_grad_()


def chains():
    for d in (48, 36, 24):
        yield f"gated FFN d={d}", d, dict(norm=(r(d), r(d), 1e-5), epilogue="gate",
                                          w_out=r(d, d, scale=d ** -0.5)), r(2 * d, d, scale=d ** -0.5), r(2 * d, 1, 3, 3, scale=1 / 3)
    for d in (48, 36, 24):
        yield f"local module head d={d}", d, dict(b_in=r(d), gelu_in=True, b_dw=r(d),
                                                  epilogue="gelu"), r(d, d, scale=d ** -0.5), r(d, 1, 3, 3, scale=1 / 3)
    yield "channel attention q d=48", 48, dict(norm=(r(48), r(48), 1e-5)), r(48, 48, scale=48 ** -0.5), r(48, 1, 3, 3, scale=1 / 3)
    yield "window attention qkv d=36", 36, dict(norm=(r(36), r(36), 1e-5)), r(108, 36, scale=36 ** -0.5), None


def timed(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


print(f"torch {torch.__version__}; ms, best of {n} (forward + backward, batch 16 of 64x64)")
print(f"{'chain':28s} {'composition':>12s} {'fused bwd':>10s} {'ratio':>6s}")
for label, d, kw, w_in, w_dw in chains():
    x = r(16, 64, 64, d)

    def run():
        out = chain.conv_chain(x, w_in, w_dw, **kw)
        out.backward(torch.ones_like(out))
    best = {}
    for i in range(2 * n + 2):
        name = ("composition", "fused bwd")[i % 2]
        chain.OPS_WITH_FUSED_BACKWARD = () if name == "composition" else ("cpu",)
        t = timed(run)
        if i >= 2:
            best[name] = min(best.get(name, t), t)
    c, f = best["composition"], best["fused bwd"]
    print(f"{label:28s} {c * 1e3:12.1f} {f * 1e3:10.1f} {c / f:6.2f}")
