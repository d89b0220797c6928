"""The reference, the fused model, and the fused model with its conv chains cut to their
products (ASID_CEIL: no LayerNorm, depthwise taps, GELU or gate, nor in the backward their
derivatives; wrong outputs and gradients, a ceiling), alternating call by call in one process:

    python ceil_ab.py [ROUNDS]            # x4 1x3x180x320 forward (720p out), no grad
    python ceil_ab.py --train [ROUNDS]    # x2 forward + L1 + backward, batch 16 of 64x64,
                                          # no optimizer step

Run with the extension built from ceil_switch.patch (a throwaway build)."""
import os
import statistics
import sys
import time

import torch
import torch.nn.functional as F

import asid_fast
from asid_fast.model import ASID
from asid_fast.reference.model import ASID as Ref

NAMES = ("reference", "fused", "ceil")


def candidates(train):
    """(call, models): call(model) runs one timed unit of work on fixed inputs."""
    torch.manual_seed(0)
    scale = 2 if train else 4
    ref, fused = Ref(scale, "asid"), ASID(scale, "asid")
    fused.load_state_dict(ref.state_dict())
    models = {"reference": ref.train(train), "fused": fused.train(train), "ceil": fused}
    if not train:
        x = torch.rand(1, 3, 180, 320)
        return torch.no_grad()(lambda m: m(x)), models
    g = torch.Generator().manual_seed(2)
    x = torch.rand(16, 3, 64, 64, generator=g)
    target = torch.rand(16, 3, 128, 128, generator=g)

    def step(m):
        m.zero_grad(set_to_none=True)
        F.l1_loss(m(x), target).backward()
    return step, models


def main():
    train = "--train" in sys.argv
    args = [a for a in sys.argv[1:] if a != "--train"]
    rounds = int(args[0]) if args else 6
    print("asid_fast from", asid_fast.__file__, file=sys.stderr)
    torch.set_num_threads(2)
    call, models = candidates(train)

    def run(name):
        if name == "ceil":
            os.environ["ASID_CEIL"] = "1"
        else:
            os.environ.pop("ASID_CEIL", None)
        s = time.perf_counter()
        call(models[name])
        return time.perf_counter() - s

    for n in NAMES:
        run(n)
        run(n)
    ts = {n: [] for n in NAMES}
    for r in range(rounds):
        for n in (NAMES if r % 2 == 0 else NAMES[::-1]):
            ts[n].append(run(n))
    for n in NAMES:
        print(f"{n:10s} best {min(ts[n])*1e3:8.1f} ms  median "
              f"{statistics.median(ts[n])*1e3:8.1f} ms")
    for a, b in [("reference", "fused"), ("reference", "ceil"), ("fused", "ceil")]:
        pr = statistics.median([p / q for p, q in zip(ts[a], ts[b])])
        print(f"{a} / {b}: best {min(ts[a])/min(ts[b]):.3f}  paired median {pr:.3f}")


if __name__ == "__main__":
    main()
