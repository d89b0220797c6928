"""A/B in one process of LayerNorm pixels per step (normalize_rows' kNormPixels): 1, the former
pixel-by-pixel order, against 8. Needs a throwaway build of a400b25 with norm_pixels_switch.patch
applied (normalize_rows and normalize_rows_backward read ASID_NORM_PIXELS at each call; values
above 8 only for inference). The candidates alternate call by call, their order swapped every
round: fused x4 720p inference (1x3x180x320), then the x2 training step
(../20261205b_cpu/split_ab.py).
Prints each candidate's best and median and the median of the rounds' paired ratios.
Usage: python norm_ab.py [INFERENCE_ROUNDS [TRAIN_ROUNDS [A B]]]"""
import os
import statistics
import sys
import time

import torch

from asid_fast.model import ASID

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "20261205b_cpu"))
from split_ab import training_step  # noqa: E402


def ab(name, fn, rounds, cands):
    times = {c: [] for c in cands}
    fn()
    for r in range(rounds):
        for c in cands if r % 2 == 0 else cands[::-1]:
            os.environ["ASID_NORM_PIXELS"] = c
            t = time.perf_counter()
            fn()
            times[c].append(time.perf_counter() - t)
    a, b = (times[c] for c in cands)
    paired = statistics.median(x / y for x, y in zip(a, b))
    print(f"{name}: {cands[0]} best {min(a) * 1e3:.0f} median {statistics.median(a) * 1e3:.0f} ms"
          f" | {cands[1]} best {min(b) * 1e3:.0f} median {statistics.median(b) * 1e3:.0f} ms | "
          f"{cands[0]}/{cands[1]} best {min(a) / min(b):.3f}, paired median {paired:.3f}",
          flush=True)


def main(inf_rounds=25, train_rounds=14, cands=("1", "8")):
    torch.set_num_threads(2)
    torch.manual_seed(0)
    model = ASID(4).eval()
    x = torch.rand(1, 3, 180, 320)
    with torch.no_grad():
        outs = []
        for c in cands:
            os.environ["ASID_NORM_PIXELS"] = c
            outs.append(model(x))
        print("inference outputs identical:", torch.equal(*outs))
        ab("x4 720p inference", lambda: model(x), inf_rounds, cands)
    if train_rounds:
        _, step, _ = training_step()
        ab("x2 training step", step, train_rounds, cands)


if __name__ == "__main__":
    a = sys.argv[1:]
    main(*(int(v) for v in a[:2]), *([tuple(a[2:4])] if len(a) >= 4 else []))
