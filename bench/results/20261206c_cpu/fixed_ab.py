"""A/B in one process: the fixed cost of a x4 forward on small tiles. Candidates, alternating call
by call in a rotating order (all in inference mode, as `asid-fast upscale` and `eval` call):
  old     plain trace (torch.jit.trace, as before) + parameters padded by ATen (ASID_OLDPAD=1)
  pad     plain trace + direct padding (padded_rows' CPU loop)
  freeze  frozen trace (torch.jit.freeze of it, numerics kept; tried, not kept) + ATen padding
  new     frozen trace + direct padding
  eager_old / eager_new  the model's own forward (no trace), ATen / direct padding
Needs a build with pad_switch.patch (ASID_OLDPAD read at each padded_rows call). Checks that all
outputs equal the eager model's bit for bit; prints best ms and the median of paired ratios
old / candidate. Usage: python fixed_ab.py ROUNDS BxS [BxS ...] (e.g. 1x64 8x64 1x16)"""
import os
import statistics
import sys
import time
import warnings

import torch

from asid_fast.model import ASID


def x4_model():
    """The x4 fused model (random weights) on 2 threads."""
    torch.set_num_threads(2)
    torch.manual_seed(0)
    warnings.simplefilter("ignore", torch.jit.TracerWarning)
    return ASID(4).eval()


def traces(model, case):
    """(input shape, plain trace, frozen trace) for a case "BxS" (B images of S x S)."""
    batch, side = map(int, case.split("x"))
    shape = (batch, 3, side, side)
    with torch.no_grad():
        plain = torch.jit.trace(model, torch.rand(shape), check_trace=False)
        return shape, plain, torch.jit.freeze(plain, optimize_numerics=False)


def main(rounds, cases):
    model = x4_model()
    for case in cases:
        shape, plain, frozen = traces(model, case)
        cands = {"old": (plain, "1"), "pad": (plain, "0"), "freeze": (frozen, "1"),
                 "new": (frozen, "0"), "eager_old": (model, "1"), "eager_new": (model, "0")}
        x = torch.rand(shape)
        times = {k: [] for k in cands}
        with torch.inference_mode(), torch.jit.optimized_execution(False):
            ref = model(x)
            for name, (fn, flag) in cands.items():
                os.environ["ASID_OLDPAD"] = flag
                fn(x)
                assert torch.equal(fn(x), ref), name
            names = list(cands)
            for r in range(rounds):
                for name in names[r % len(names):] + names[:r % len(names)]:
                    fn, flag = cands[name]
                    os.environ["ASID_OLDPAD"] = flag
                    t = time.perf_counter()
                    fn(x)
                    times[name].append(time.perf_counter() - t)
        line = [f"{case}: same bits as eager: all"]
        for name, ts in times.items():
            base = times["eager_old" if name.startswith("eager") else "old"]
            paired = statistics.median(a / b for a, b in zip(base, ts))
            line.append(f"{name} {min(ts) * 1e3:.2f} ms ({min(base) / min(ts):.3f} / {paired:.3f})")
        print(" | ".join(line), flush=True)


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2:])
