"""The model's tail at x4 720p (2 threads, interleaved, best of 40): the output conv + f0, the
upsampling conv and the pixel shuffle as the model runs them, against the add in place and the
shuffle as a reshape/permute of the channels_last conv output (which gives a contiguous NCHW
image), and the two convolutions alone. Run from the repository root:

    OMP_WAIT_POLICY=PASSIVE python bench/results/20261204d_cpu/tail_ab.py
"""
import time

import torch
import torch.nn.functional as F

torch.set_num_threads(2)
B, C, H, W, S = 1, 48, 184, 320, 4
f = torch.randn(B, H, W, C).permute(0, 3, 1, 2)  # channels_last (B, C, H, W)
f0 = torch.randn(B, H, W, C).permute(0, 3, 1, 2)
w1, b1 = torch.randn(C, C, 3, 3), torch.randn(C)
w2, b2 = torch.randn(3 * S * S, C, 3, 3), torch.randn(3 * S * S)


def as_model():
    y = F.conv2d(f, w1, b1, padding=1) + f0
    return F.pixel_shuffle(F.conv2d(y, w2, b2, padding=1), S)


def in_place_add():
    y = F.conv2d(f, w1, b1, padding=1).add_(f0)
    return F.pixel_shuffle(F.conv2d(y, w2, b2, padding=1), S)


def reshaped():
    y = F.conv2d(f, w1, b1, padding=1).add_(f0)
    u = F.conv2d(y, w2, b2, padding=1).permute(0, 2, 3, 1)  # (B, H, W, 3 S S) memory order
    return u.reshape(B, H, W, 3, S, S).permute(0, 3, 1, 4, 2, 5).reshape(B, 3, H * S, W * S)


def convs_only():
    return F.conv2d(F.conv2d(f, w1, b1, padding=1).add_(f0), w2, b2, padding=1)


reference = as_model()
assert torch.equal(reshaped(), reference) and torch.equal(in_place_add(), reference)
cases = {"as_model": as_model, "in_place_add": in_place_add, "reshaped": reshaped,
         "convs_only": convs_only}
times = {k: [] for k in cases}
with torch.inference_mode():
    for _ in range(40):
        for k, fn in cases.items():
            start = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - start)
print({k: round(min(v) * 1e3, 2) for k, v in times.items()})
