"""A/B of two builds of the extension, alternating processes (one build per process): the fused
x2 training step (batch 16 of 64x64, L1 loss, Adam) and x4 1x3x180x320 inference. Each build is
a copy of the asid_fast package (with its _C library) under DIR/<name>/; the script runs itself
as the worker with PYTHONPATH pointing there.

    OMP_WAIT_POLICY=PASSIVE OMP_NUM_THREADS=2 python build_ab.py DIR old new --rounds 5
"""
import argparse
import json
import os
import subprocess
import sys
import time


def worker(n):
    import torch
    import torch.nn.functional as F

    from asid_fast.model import ASID

    torch.set_num_threads(2)
    torch.manual_seed(0)
    model = ASID(2, "asid", backend="auto").train()
    gen = torch.Generator().manual_seed(2)
    x = torch.rand((16, 3, 64, 64), generator=gen)
    target = torch.rand((16, 3, 128, 128), generator=gen)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)

    def step():
        opt.zero_grad(set_to_none=True)
        F.l1_loss(model(x), target).backward()
        opt.step()

    def best_of(fn, reps):
        fn()
        times = []
        for _ in range(reps):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        return min(times) * 1e3
    train = best_of(step, n)
    inf_model = ASID(4, "asid", backend="auto").eval()
    lr = torch.rand(1, 3, 180, 320, generator=gen)
    with torch.no_grad():
        infer = best_of(lambda: inf_model(lr), n)
    print(json.dumps({"train_ms": train, "infer_ms": infer}))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("dir")
    p.add_argument("builds", nargs="+")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--reps", type=int, default=3, help="timed calls per process (best kept)")
    args = p.parse_args()
    results = {b: [] for b in args.builds}
    for r in range(args.rounds):
        for b in args.builds:
            env = dict(os.environ, PYTHONPATH=os.path.join(args.dir, b))
            out = subprocess.run([sys.executable, __file__, "--worker", str(args.reps)], env=env,
                                 capture_output=True, text=True, check=True).stdout
            results[b].append(json.loads(out.strip().splitlines()[-1]))
            print(f"round {r} {b}: {results[b][-1]}", flush=True)
    base = args.builds[0]
    for key in ("train_ms", "infer_ms"):
        for b in args.builds:
            vals = sorted(x[key] for x in results[b])
            ref = sorted(x[key] for x in results[base])
            print(f"{key} {b}: best {vals[0]:.1f} median {vals[len(vals) // 2]:.1f}  "
                  f"{base}/{b} {ref[0] / vals[0]:.3f} / {ref[len(ref) // 2] / vals[len(vals) // 2]:.3f}")


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--worker":
        worker(int(sys.argv[2]))
    else:
        main()
