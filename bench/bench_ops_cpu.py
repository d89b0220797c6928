"""CPU benchmark of the compiled window operators against the reference ops (issue 4).

ASID's real shapes: B=1, a 184x320 feature map (720p output at x4), d = 36 / 24 / 12, meso and
global windows of 8x8, q/k/v strided views of one (B, H, W, 3d) projection with a (64, 64) bias.
Forward (no grad) and forward+backward are timed side by side, interleaved, best of --repeats; the
ratio is reference time / extension time. Forward+backward = the forward with autograd, then
torch.autograd.grad of (out, attn) (random output gradients) with respect to the op's own inputs
(the q/k/v views and the bias): the op's backward only, without the split-backward concatenation
into the projection's gradient and without gradient accumulation, which are the same for both.
Shared-window and channel attention (C=48, "window" and "cell" groups) are timed the same way for
information.

Run from the repository root (2 threads, passive OpenMP waits, as every CPU benchmark of this
project), after building the extension (python setup.py build_ext --inplace):
    OMP_WAIT_POLICY=PASSIVE PYTHONPATH=. python bench/bench_ops_cpu.py --threads 2
"""
from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch starts OpenMP

import torch  # noqa: E402

from asid_fast import ops  # noqa: E402

H, W, WINDOW = 184, 320, 8


def _window_case(d, mode):
    g = torch.Generator().manual_seed(d)
    x = torch.randn(1, H, W, 3 * d, generator=g).requires_grad_()
    bias = torch.randn(WINDOW * WINDOW, WINDOW * WINDOW, generator=g).requires_grad_()
    q, k, v = x.split(d, dim=-1)
    n = (H // WINDOW) * (W // WINDOW)
    grads = (torch.randn(1, H, W, d, generator=g), torch.randn(n, 64, 64, generator=g))

    def forward(backend):
        with torch.no_grad():
            ops.window_attention(q, k, v, bias, mode=mode, backend=backend)

    def train(backend):
        out, attn = ops.window_attention(q, k, v, bias, mode=mode, backend=backend)
        torch.autograd.grad((out, attn), (q, k, v, bias), grads)

    return forward, train


def _shared_case(d, mode):
    g = torch.Generator().manual_seed(d)
    n = (H // WINDOW) * (W // WINDOW)
    attn = torch.randn(n, 64, 64, generator=g).softmax(-1).requires_grad_()
    v = torch.randn(1, H, W, d, generator=g).requires_grad_()
    grad = torch.randn(1, H, W, d, generator=g)

    def forward(backend):
        with torch.no_grad():
            ops.shared_window_attention(attn, v, mode=mode, backend=backend)

    def train(backend):
        out = ops.shared_window_attention(attn, v, mode=mode, backend=backend)
        torch.autograd.grad(out, (attn, v), grad)

    return forward, train


def _channel_case(c, mode):
    g = torch.Generator().manual_seed(c)
    x = torch.randn(1, H, W, 3 * c, generator=g).requires_grad_()
    temperature = torch.ones(1, 1, 1).requires_grad_()
    q, k, v = x.split(c, dim=-1)
    grad = torch.randn(1, H, W, c, generator=g)

    def forward(backend):
        with torch.no_grad():
            ops.channel_attention(q, k, v, temperature, mode=mode, backend=backend)

    def train(backend):
        out = ops.channel_attention(q, k, v, temperature, mode=mode, backend=backend)
        torch.autograd.grad(out, (q, k, v, temperature), grad)

    return forward, train


def _best_of(fns, repeats):
    """Interleaved timing: each repeat runs every function once; best time per function (s)."""
    best = [float("inf")] * len(fns)
    for fn in fns:  # warm-up
        fn()
    for _ in range(repeats):
        for i, fn in enumerate(fns):
            t0 = time.perf_counter()
            fn()
            best[i] = min(best[i], time.perf_counter() - t0)
    return best


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--only-window", action="store_true", help="skip shared/channel rows")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    from asid_fast.ops import _registry

    reason = _registry.why_unavailable("cpu", "cpu")
    if reason:
        raise SystemExit(f"the CPU extension is unavailable: {reason}")
    print(f"torch {torch.__version__}, {args.threads} threads, "
          f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}, "
          f"CPU kernels: {_registry.extension().cpu_isa()}, "
          f"map {H}x{W}, best of {args.repeats} (interleaved)")
    cases = [("window_attention", d, m, _window_case)
             for d in (36, 24, 12) for m in ("meso", "global")]
    if not args.only_window:
        cases += [("shared_window_attention", d, m, _shared_case)
                  for d in (36, 24, 12) for m in ("meso", "global")]
        cases += [("channel_attention", 48, m, _channel_case) for m in ("window", "cell")]
    print(f"{'op':<24} {'d':>3} {'mode':<7} {'pass':<8} {'reference ms':>12} {'cpu ms':>8} "
          f"{'ratio':>6}")
    for name, d, mode, make in cases:
        forward, train = make(d, mode)
        for label, fn in (("fwd", forward), ("fwd+bwd", train)):
            ref, cpu = _best_of([lambda: fn("reference"), lambda: fn("cpu")], args.repeats)
            print(f"{name:<24} {d:>3} {mode:<7} {label:<8} {ref * 1e3:12.2f} {cpu * 1e3:8.2f} "
                  f"{ref / cpu:6.2f}x", flush=True)


if __name__ == "__main__":
    main()
