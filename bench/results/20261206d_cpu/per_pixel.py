"""Per-pixel cost of the channel attention op and two conv chains on a 1x184x320x48 map (11 MB,
out of L2 and L3) against a 1x32x64x48 map (in L2): best of 7 timings, 2 threads."""
import time

import torch

from asid_fast import ops

torch.set_num_threads(2)
C = 48


def ns_per_pixel(h, w, op, reps):
    """Best ns a pixel of op(inputs) for fresh (1, h, w, C) inputs."""
    inputs = [torch.randn(1, h, w, C) for _ in range(3)]
    with torch.inference_mode():
        op(*inputs)
        best = 1e9
        for _ in range(7):
            t0 = time.perf_counter()
            for _ in range(reps):
                op(*inputs)
            best = min(best, (time.perf_counter() - t0) / reps)
    return best / (h * w) * 1e9


chain = torch.ops.asid_fast.conv_chain_fwd.default
nw, nb, t = torch.randn(C), torch.randn(C), torch.ones(1, 1, 1)
cases = {
    f"channel_attention {mode}": lambda q, k, v, mode=mode: ops.channel_attention(
        q, k, v, t, mode=mode, window=8, backend="cpu")
    for mode in ("window", "cell")}
w_qkv, dw_qkv = torch.randn(C, C) * .1, torch.randn(C, 1, 3, 3) * .1
w_gfn, dw_gfn = torch.randn(2 * C, C) * .1, torch.randn(2 * C, 1, 3, 3) * .1
w_out = torch.randn(C, C) * .1
cases["q/k/v chain"] = lambda x, *_: chain(x, nw, nb, 1e-6, w_qkv, None, False, dw_qkv, None,
                                           "none", None)
cases["gated FFN chain"] = lambda x, *_: chain(x, nw, nb, 1e-6, w_gfn, None, False, dw_gfn, None,
                                               "gate", w_out)
for name, op in cases.items():
    big, small = ns_per_pixel(184, 320, op, 3), ns_per_pixel(32, 64, op, 60)
    print(f"{name}: ns/px 184x320 {big:.0f}, 32x64 {small:.0f}, ratio {big / small:.2f}")
