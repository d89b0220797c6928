"""A/B of the fused linear backward (asid_fast::linear_bwd) against the matmul backward it
replaced, on the whole fused x2 training step, interleaved in one process. The old backward is
re-created here as a Python autograd Function around the same forward op (its formula as
csrc/ops/autograd.cpp had it); the Python Function adds some tens of microseconds per call.

    OMP_WAIT_POLICY=PASSIVE OMP_NUM_THREADS=2 python bench/results/20261204g_cpu/linear_bwd_ab.py
"""
import statistics
import sys
import time

import torch
import torch.nn.functional as F

import asid_fast.model as M
from asid_fast.ops import linear as fused_linear


class MatmulBackwardLinear(torch.autograd.Function):
    @staticmethod
    def forward(ctx, weight, bias, residual, gate, *xs):
        ctx.save_for_backward(weight, bias, residual, gate, *xs)
        return torch.ops.asid_fast.linear_fwd(list(xs), weight, bias, residual, gate)

    @staticmethod
    def backward(ctx, grad):
        weight, bias, residual, gate, *xs = ctx.saved_tensors
        grad_gate = None
        if gate is not None:
            pre = torch.ops.asid_fast.linear_fwd(xs, weight, bias, residual, None)
            sg = pre.sigmoid_()
            grad_gate = grad * sg
            grad = grad * gate * sg * (1 - sg)
        per_image = weight.dim() == 3
        g = grad.flatten(1, 2) if per_image else grad.reshape(-1, grad.shape[-1])
        dxs, dws, k0 = [], [], 0
        for x in xs:
            k = x.shape[-1]
            w = weight.narrow(-1, k0, k)
            k0 += k
            dxs.append((g @ w).view(x.shape))
            xf = x.flatten(1, 2) if per_image else x.reshape(-1, k)
            dws.append(g.transpose(-1, -2) @ xf)
        dw = dws[0] if len(dws) == 1 else torch.cat(dws, -1)
        db = grad.sum((0, 1, 2)) if bias is not None else None
        return (dw, db, grad if residual is not None else None, grad_gate, *dxs)


MODE = {"old": False}


def linear(xs, weight, bias=None, residual=None, *, gate=None, backend="auto"):
    if MODE["old"] and torch.is_grad_enabled():
        return MatmulBackwardLinear.apply(weight, bias, residual, gate, *xs)
    return fused_linear(xs, weight, bias, residual, gate=gate, backend=backend)


def main(batch=16, rounds=7):
    torch.set_num_threads(2)
    torch.manual_seed(0)
    M.linear = linear
    x, target = torch.rand(batch, 3, 64, 64), torch.rand(batch, 3, 128, 128)
    models = {name: M.ASID(2, "asid").train() for name in ("old", "new")}
    models["new"].load_state_dict(models["old"].state_dict())
    opts = {name: torch.optim.Adam(m.parameters(), 1e-4) for name, m in models.items()}

    def step(name):
        MODE["old"] = name == "old"
        opts[name].zero_grad(set_to_none=True)
        loss = F.l1_loss(models[name](x), target)
        loss.backward()
        opts[name].step()
        return loss.item()

    # same losses and gradients on the first step (same weights, same data)
    for name in models:
        models[name].zero_grad(set_to_none=True)
        MODE["old"] = name == "old"
        F.l1_loss(models[name](x), target).backward()
    diff = max((a.grad - b.grad).abs().max().item() / b.grad.abs().max().clamp_min(1e-30).item()
               for a, b in zip(models["new"].parameters(), models["old"].parameters()))
    print(f"batch {batch}: largest parameter-gradient difference new vs old: {diff:.2e} "
          "(relative to the gradient's max)")
    times = {name: [] for name in models}
    for r in range(rounds + 1):
        order = ("old", "new") if r % 2 else ("new", "old")
        for name in order:
            t0 = time.perf_counter()
            step(name)
            if r:
                times[name].append((time.perf_counter() - t0) * 1e3)
    for name, t in times.items():
        print(f"  {name}: best {min(t):.1f} ms, median {statistics.median(t):.1f} ms")
    print(f"  old/new: best {min(times['old']) / min(times['new']):.3f}, "
          f"median {statistics.median(times['old']) / statistics.median(times['new']):.3f}")


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:]))
