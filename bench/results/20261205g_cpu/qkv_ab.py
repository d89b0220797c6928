"""A/B in one process (not kept): channel attention's q, k and v as three conv_chain calls (the
shipped asid_fast/model.py: LayerNorm, 1x1 and depthwise conv per 48-channel chunk) against one
call on the stacked 144-channel weights with q, k, v as channel views of its output. Fused x4
720p inference (1x3x180x320) and the x2 training step (../20261205b_cpu/split_ab.py), the
candidates' order alternating per round. Usage: python qkv_ab.py ROUNDS"""
import os
import statistics
import sys
import time

import torch

from asid_fast import model as M
from asid_fast import ops
from asid_fast.ops import conv_chain, linear

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "20261205b_cpu"))
from split_ab import training_step  # noqa: E402

THREE = M._channel_attention


def merged(ca, norm, x, backend):
    qkv = conv_chain(x, M._w(ca.qkv), ca.qkv_dwconv.weight, norm=M._norm(norm), backend=backend)
    q, k, v = qkv.chunk(3, dim=-1)
    o = ops.channel_attention(q, k, v, ca.temperature, mode=ca.mode, window=ca.window,
                              backend=backend)
    return linear([o], M._w(ca.project_out), None, x, backend=backend)


def main(rounds):
    torch.set_num_threads(2)
    torch.manual_seed(0)
    model = M.ASID(4).eval()
    x = torch.rand(1, 3, 180, 320)
    _, step, _ = training_step()
    with torch.no_grad():
        M._channel_attention = THREE
        a = model(x)
        M._channel_attention = merged
        b = model(x)
    print("inference max |three - merged|", (a - b).abs().max().item())
    times = {(kind, name): [] for kind in ("inference", "train") for name in ("three", "merged")}
    for r in range(rounds):
        for name in ("three", "merged") if r % 2 == 0 else ("merged", "three"):
            M._channel_attention = THREE if name == "three" else merged
            with torch.no_grad():
                model(x)
                t = time.perf_counter()
                model(x)
                times[("inference", name)].append(time.perf_counter() - t)
            step()
            t = time.perf_counter()
            step()
            times[("train", name)].append(time.perf_counter() - t)
    for kind in ("inference", "train"):
        three, one = times[(kind, "three")], times[(kind, "merged")]
        print(f"{kind}: three best/median {min(three) * 1e3:.0f}/"
              f"{statistics.median(three) * 1e3:.0f} ms, merged {min(one) * 1e3:.0f}/"
              f"{statistics.median(one) * 1e3:.0f} ms, three/merged best "
              f"{min(three) / min(one):.3f} median "
              f"{statistics.median(three) / statistics.median(one):.3f}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5)
