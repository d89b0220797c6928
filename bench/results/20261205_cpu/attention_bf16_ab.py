"""In-process A/B of bf16 products in the attention blocks and channel attention (x4
1x3x180x320 inference, fused model, rounds interleaved, best and median per candidate): "fp32"
(every product in float32), "chain+linear" (bf16 products in conv_chain and the linear op only:
the attention blocks' and channel attention's calls run under "ieee"), "+blocks" (the attention
blocks' products in bf16 too), "all" (channel attention's too).

    OMP_WAIT_POLICY=PASSIVE OMP_NUM_THREADS=2 python attention_bf16_ab.py --rounds 7
"""
import argparse
import statistics
import time

import torch

import asid_fast.model as M
from asid_fast import ops

MATMUL = torch.backends.mkldnn.matmul


def ieee(fn):
    def run(*args, **kwargs):
        old = MATMUL.fp32_precision
        MATMUL.fp32_precision = "ieee"
        try:
            return fn(*args, **kwargs)
        finally:
            MATMUL.fp32_precision = old
    return run


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--reps", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(2)
    model = M.ASID(4, "asid").eval()
    x = torch.rand(1, 3, 180, 320, generator=torch.Generator().manual_seed(0))
    plain = {k: getattr(ops, k)
             for k in ("attention_block", "shared_attention_block", "channel_attention")}
    in_ieee = {"chain+linear": set(plain), "+blocks": {"channel_attention"}}

    def setup(name):
        MATMUL.fp32_precision = "ieee" if name == "fp32" else "bf16"
        for k, v in plain.items():
            setattr(M.ops, k, ieee(v) if k in in_ieee.get(name, ()) else v)

    names = ["fp32", "chain+linear", "+blocks", "all"]
    times = {n: [] for n in names}
    outs = {}
    with torch.no_grad():
        for n in names:
            setup(n)
            outs[n] = model(x)
        for r in range(args.rounds):
            for n in names:
                setup(n)
                for _ in range(args.reps):
                    t0 = time.perf_counter()
                    model(x)
                    times[n].append((time.perf_counter() - t0) * 1e3)
            print(f"round {r}: " + ", ".join(f"{n} {times[n][-1]:.1f}" for n in names), flush=True)
    setup("fp32")
    for n in names:
        best, med = min(times[n]), statistics.median(times[n])
        b0, m0 = min(times["chain+linear"]), statistics.median(times["chain+linear"])
        diff = (outs[n] - outs["fp32"]).abs().max().item()
        print(f"{n:13s} best {best:7.1f} median {med:7.1f} ms   chain+linear/{n}: "
              f"{b0 / best:.3f} / {m0 / med:.3f}   max |out - fp32 out| {diff:.2e}")


if __name__ == "__main__":
    main()
