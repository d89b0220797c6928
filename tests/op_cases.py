"""Sample arguments of every registered op (asid_fast.ops._registry.OPS), shared by the parity
grid, opcheck, the fake-kernel and FLOP tests.

A case makes the op's arguments in a dtype on a device: values drawn in float64 from a generator
seeded by the case, then rounded to the dtype, so the float64 reference can run on exactly the
values the backend sees. The shapes cover batch > 1, maps whose sides are not multiples of 8
(windows of 3, 4, 5 and 12), channel counts that are not multiples of the vector width, strided
inputs (channel slices of a wider map, q/k/v views of one projection, a transposed view) and
optional arguments present and absent. ``small`` cases are the ones the Triton interpreter runs
(it takes seconds per window); on a GPU every case runs.
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Callable

import torch

from asid_fast.ops._registry import OPS


@dataclass(frozen=True)
class Case:
    op: str
    label: str
    make: Callable  # (dtype, device) -> list of the op's arguments
    small: bool = False

    @property
    def id(self):
        return f"{self.op}[{self.label}]"


class Values:
    """Deterministic float64 values for one case, rounded to ``dtype`` on ``device``."""

    def __init__(self, label, dtype, device):
        self.g = torch.Generator().manual_seed(zlib.crc32(label.encode()))
        self.dtype, self.device = dtype, device

    def randn(self, *shape, scale=1.0):
        return self.put(torch.randn(*shape, generator=self.g, dtype=torch.float64) * scale)

    def put(self, t):
        return t.to(self.dtype).to(self.device)

    def stats(self, t):
        """An op's saved statistics: float32 for half-precision maps."""
        half = self.dtype in (torch.float16, torch.bfloat16)
        return t.to(torch.float32 if half else self.dtype).to(self.device)


def reference_outputs(op, args):
    """The op's reference outputs on float64 copies of ``args``."""
    def up(a):
        if isinstance(a, torch.Tensor) and a.is_floating_point():
            return a.double()
        if isinstance(a, list):
            return [up(t) for t in a]
        return a
    return OPS[op].reference(*[up(a) for a in args])


# ---- window attention and the shared apply ---------------------------------------------------

def _window(label, b, h, w, d, window, mode, bias, layout="views"):
    def qkv(v):
        if layout == "views":  # q, k, v split from one (B, H, W, 3d) projection
            return v.randn(b, h, w, 3 * d).split(d, dim=-1)
        return (v.randn(b, h, w, d + 5)[..., 2:d + 2],  # a channel slice of a wider map
                v.randn(b, w, h, d).transpose(1, 2),  # H and W swapped in memory
                v.randn(b, h, w, d))

    def fwd(dtype, device):
        v = Values(label, dtype, device)
        q, k, val = qkv(v)
        n = window * window
        return [q, k, val, v.randn(n, n) if bias else None, mode, window, d ** -0.5]

    def bwd(dtype, device):
        args = fwd(dtype, device)
        _, attn = reference_outputs("window_attention_fwd", args)
        v = Values(label + "/grad", dtype, device)
        windows = b * (h // window) * (w // window)
        n = window * window
        return [v.randn(b, h, w, d), v.randn(windows, n, n) if bias else None, *args[:3],
                v.put(attn), *args[3:]]

    def shared_fwd(dtype, device):
        v = Values(label + "/shared", dtype, device)
        windows, n = b * (h // window) * (w // window), window * window
        return [v.put(torch.randn(windows, n, n, generator=v.g, dtype=torch.float64).softmax(-1)),
                v.randn(b, h, w, d + 3)[..., 3:], mode, window]

    def shared_bwd(dtype, device):
        attn, val, mode_, window_ = shared_fwd(dtype, device)
        return [Values(label + "/shared grad", dtype, device).randn(b, h, w, d), attn, val, mode_,
                window_]
    return fwd, bwd, shared_fwd, shared_bwd


WINDOW_SHAPES = [  # label, b, h, w, d, window, mode, bias, layout, small
    ("tiny", 2, 4, 6, 3, 2, "global", True, "views", True),
    ("d24 meso", 2, 16, 24, 24, 8, "meso", True, "views", True),
    ("d12 global", 2, 24, 16, 12, 8, "global", True, "views", True),
    ("d36 global no bias", 1, 16, 16, 36, 8, "global", False, "views", False),
    ("separate strides", 2, 16, 24, 12, 8, "global", True, "separate", False),
    ("w3 d7 meso", 2, 9, 15, 7, 3, "meso", True, "views", True),  # n = 9: padded rows
    ("w4 d5 global", 2, 12, 20, 5, 4, "global", True, "views", False),
    ("w5 d6 meso", 1, 15, 25, 6, 5, "meso", True, "views", False),
    ("w12 d20 global", 2, 36, 60, 20, 12, "global", True, "views", False),  # n = 144
    ("d36 global 184x320", 1, 184, 320, 36, 8, "global", True, "views", False),  # 720p out at x4
]


def _window_cases():
    cases = []
    for label, b, h, w, d, window, mode, bias, layout, small in WINDOW_SHAPES:
        fwd, bwd, shared_fwd, shared_bwd = _window(label, b, h, w, d, window, mode, bias, layout)
        cases += [Case("window_attention_fwd", label, fwd, small),
                  Case("window_attention_bwd", label, bwd, small),
                  Case("shared_window_attention_fwd", label, shared_fwd, small),
                  Case("shared_window_attention_bwd", label, shared_bwd, small)]
    return cases


# ---- channel attention -----------------------------------------------------------------------

def _channel(label, b, h, w, c, window, mode, zero_rows=False):
    def fwd(dtype, device):
        v = Values(label, dtype, device)
        x = v.randn(b, h, w, 3 * c)
        if zero_rows:  # all-zero channel rows of a group hit the norm's eps clamp
            x[0, 0:window, 0:window, 1] = 0  # q channel 1 of window (0, 0)
            x[:, ::window, ::window, c + 2] = 0  # k channel 2 of cell group (0, 0)
        q, k, val = x.split(c, dim=-1)
        return [q, k, val, v.put(torch.full((1, 1, 1), 1.7, dtype=torch.float64)), mode, window]

    def bwd(dtype, device):
        args = fwd(dtype, device)
        _, attn, rq, rk = reference_outputs("channel_attention_fwd", args)
        v = Values(label + "/grad", dtype, device)
        return [v.randn(b, h, w, c), *args[:4], v.stats(attn), v.stats(rq), v.stats(rk), *args[4:]]
    return fwd, bwd


CHANNEL_SHAPES = [  # label, b, h, w, c, window, mode, zero rows, small
    ("tiny", 2, 4, 6, 3, 2, "cell", False, True),
    ("c48 window", 2, 16, 24, 48, 8, "window", False, True),
    ("c48 cell", 2, 16, 24, 48, 8, "cell", False, True),
    ("c13 cell w4", 2, 12, 20, 13, 4, "cell", False, False),
    ("c5 window zero rows", 2, 16, 24, 5, 8, "window", True, False),
    ("c5 cell zero rows", 2, 16, 24, 5, 8, "cell", True, False),
    ("c48 cell 184x320", 1, 184, 320, 48, 8, "cell", False, False),  # 920 pixels per group
]


def _channel_cases():
    cases = []
    for label, b, h, w, c, window, mode, zero_rows, small in CHANNEL_SHAPES:
        fwd, bwd = _channel(label, b, h, w, c, window, mode, zero_rows)
        cases += [Case("channel_attention_fwd", label, fwd, small),
                  Case("channel_attention_bwd", label, bwd, small)]
    return cases


# ---- layer norm --------------------------------------------------------------------------------

def _layer_norm(label, channels, strided):
    def fwd(dtype, device):
        v = Values(label, dtype, device)
        x = v.randn(2, 5, 7, channels + 5)[..., 5:] if strided else v.randn(2, 5, 7, channels)
        return [x, v.randn(channels), v.randn(channels), 1e-6]

    def bwd(dtype, device):
        x, weight, bias, eps = fwd(dtype, device)
        _, mean, rstd = reference_outputs("layer_norm_fwd", [x, weight, bias, eps])
        acc = torch.float64 if dtype == torch.float64 else torch.float32
        return [Values(label + "/grad", dtype, device).randn(2, 5, 7, channels), x, weight,
                mean.to(device, acc), rstd.to(device, acc)]
    return fwd, bwd


def _layer_norm_cases():
    cases = []
    for label, channels, strided, small in [("c12 strided", 12, True, True),
                                            ("c36", 36, False, False),
                                            ("c48 strided", 48, True, False),
                                            ("c13", 13, False, True)]:
        fwd, bwd = _layer_norm(label, channels, strided)
        cases += [Case("layer_norm_fwd", label, fwd, small), Case("layer_norm_bwd", label, bwd, small)]
    return cases


# ---- depthwise 3x3 convolution -------------------------------------------------------------

def _dwconv(label, h, w, channels, epilogue, with_bias, strided):
    def fwd(dtype, device):
        v = Values(label, dtype, device)
        x = v.randn(2, h, w, channels + 3)[..., 3:] if strided else v.randn(2, h, w, channels)
        return [x, v.randn(channels, 1, 3, 3, scale=1 / 3), v.randn(channels) if with_bias else None,
                epilogue]

    def bwd(dtype, device):
        x, weight, bias, e = fwd(dtype, device)
        cout = channels // 2 if e == "gate" else channels
        return [Values(label + "/grad", dtype, device).randn(2, h, w, cout), x, weight, bias, e]
    return fwd, bwd


DWCONV_SHAPES = [  # label, h, w, channels, epilogue, bias, strided, small
    ("c12 none", 5, 6, 12, "none", False, False, True),
    ("c144 none strided", 5, 6, 144, "none", False, True, False),
    ("c36 gelu bias", 5, 6, 36, "gelu", True, False, False),
    ("c9 gelu bias strided", 5, 6, 9, "gelu", True, True, True),
    ("c72 gate", 5, 6, 72, "gate", False, False, False),
    ("c26 gate strided", 5, 6, 26, "gate", False, True, True),
    ("1x1 map", 1, 1, 16, "gate", True, False, False),  # every tap off the map somewhere
    ("1x5 map", 1, 5, 16, "gate", True, False, False),
    ("4x1 map", 4, 1, 16, "gate", True, False, False),
]


def _dwconv_cases():
    cases = []
    for label, h, w, channels, epilogue, bias, strided, small in DWCONV_SHAPES:
        fwd, bwd = _dwconv(label, h, w, channels, epilogue, bias, strided)
        cases += [Case("depthwise_conv3x3_fwd", label, fwd, small),
                  Case("depthwise_conv3x3_bwd", label, bwd, small)]
    return cases


# ---- attention blocks (LayerNorm, projection, window attention, projection, residual) ---------

def _attention_block(label, b, h, w, d, window, mode, bias, strided):
    def x_and_norm(v):
        x = v.randn(b, h, w, d + 4)[..., 2:d + 2] if strided else v.randn(b, h, w, d)
        return x, v.randn(d, scale=0.5) + 1, v.randn(d, scale=0.5), 1e-5

    def fwd(dtype, device):
        v = Values(label + "/block", dtype, device)
        n = window * window
        return [*x_and_norm(v), v.randn(3 * d, d, scale=d ** -0.5), v.randn(n, n) if bias else None,
                v.randn(d, d, scale=d ** -0.5), mode, window, d ** -0.5]

    def shared_fwd(dtype, device):
        v = Values(label + "/shared block", dtype, device)
        windows, n = b * (h // window) * (w // window), window * window
        attn = v.put(torch.randn(windows, n, n, generator=v.g, dtype=torch.float64).softmax(-1))
        return [*x_and_norm(v), v.randn(d, d, scale=d ** -0.5), attn,
                v.randn(d, d, scale=d ** -0.5), mode, window]
    return fwd, shared_fwd


BLOCK_SHAPES = [  # label, b, h, w, d, window, mode, bias, strided (a channel slice), small
    ("tiny", 2, 4, 6, 3, 2, "global", True, False, True),
    ("d12 meso strided", 2, 16, 24, 12, 8, "meso", True, True, True),
    ("d36 global", 1, 16, 16, 36, 8, "global", True, False, True),
    ("d24 global no bias", 2, 16, 24, 24, 8, "global", False, True, False),
    ("w3 d7 meso", 2, 9, 15, 7, 3, "meso", True, False, False),  # n = 9: padded tokens
    ("d36 meso 184x320", 1, 184, 320, 36, 8, "meso", True, False, False),  # 720p out at x4
]


def _attention_block_cases():
    cases = []
    for label, b, h, w, d, window, mode, bias, strided, small in BLOCK_SHAPES:
        fwd, shared_fwd = _attention_block(label, b, h, w, d, window, mode, bias, strided)
        cases += [Case("attention_block_fwd", label, fwd, small),
                  Case("shared_attention_block_fwd", label, shared_fwd, small)]
    return cases


# ---- convolution chain and linear map ----------------------------------------------------

CHAIN_SHAPES = [  # label, K, n_in, norm, b_in, gelu_in, dw ("bias", "plain", None), epilogue, w_out, strided
    ("gated FFN", 12, 24, True, False, False, "plain", "gate", True, False),
    ("gated FFN strided", 36, 72, True, False, False, "plain", "gate", True, True),
    ("local module head", 24, 24, False, True, True, "bias", "gelu", False, True),
    ("local module head c36", 36, 36, False, True, True, "bias", "gelu", False, False),
    ("channel attention qkv", 13, 13, True, False, False, "plain", "none", False, False),
    ("window attention qkv", 12, 36, True, False, False, None, "none", False, True),
    ("no dw with w_out", 12, 20, False, True, True, None, "none", True, False),
]


def _chain(label, k, n_in, norm, b_in, gelu_in, dw, epilogue, w_out, strided, h=5, w=6):
    n_mid = n_in // 2 if epilogue == "gate" else n_in

    def fwd(dtype, device):
        v = Values(label, dtype, device)
        x = v.randn(2, h, w, k + 3)[..., 3:] if strided else v.randn(2, h, w, k)
        return [x, v.randn(k) if norm else None, v.randn(k) if norm else None, 1e-6,
                v.randn(n_in, k, scale=k ** -0.5), v.randn(n_in) if b_in else None, gelu_in,
                v.randn(n_in, 1, 3, 3, scale=1 / 3) if dw else None,
                v.randn(n_in) if dw == "bias" else None, epilogue,
                v.randn(k, n_mid, scale=n_mid ** -0.5) if w_out else None]

    def bwd(dtype, device):
        grad_out = Values(label + "/grad", dtype, device).randn(2, h, w, k if w_out else n_mid)
        return [grad_out, *fwd(dtype, device)]
    return fwd, bwd


SMALL_CHAINS = ("gated FFN", "local module head", "window attention qkv", "no dw with w_out")
# CHAIN_SHAPES' fields, then the map's height and width: the backward cuts each of these two
# images of 37 rows into 3 parts (one per 16 rows, up to 16 parts in all), with rows recomputed
# next to the cuts; the shorter maps above are one part per image
TALL_CHAINS = [
    ("gated FFN 37 rows", 12, 24, True, False, False, "plain", "gate", True, True, 37, 7),
    ("local module head 37 rows", 12, 12, False, True, True, "bias", "gelu", False, False, 37, 3),
]


def _chain_cases():
    cases = []
    for shape in CHAIN_SHAPES + TALL_CHAINS:
        label, small = shape[0], shape[0] in SMALL_CHAINS
        fwd, bwd = _chain(*shape)
        if shape in CHAIN_SHAPES:
            cases.append(Case("conv_chain_fwd", label, fwd, small))
        cases.append(Case("conv_chain_bwd", label, bwd, small))
    return cases

LINEAR_SHAPES = [  # label, input widths, N, bias, residual, per-image weights, strided, gate
    ("k36 n108", (36,), 108, False, False, False, False, False),
    ("cat(y, loc)", (36, 12), 48, True, False, False, True, False),
    ("four inputs", (12, 12, 12, 12), 48, True, False, False, True, False),
    ("per-image weights", (24,), 24, True, True, True, False, False),
    ("k13 residual", (13,), 13, False, True, False, True, False),
    ("ESA gate k16 n44", (16,), 44, True, False, False, False, True),
    ("gate and residual n13", (13,), 13, False, True, True, True, True),
]


def _linear(label, widths, n, bias, residual, per_image, strided, gate):
    def fwd(dtype, device):
        v = Values(label, dtype, device)
        k = sum(widths)
        xs = [v.randn(2, 5, 6, w + 2)[..., 1:-1] if strided else v.randn(2, 5, 6, w)
              for w in widths]
        weight = v.randn(2, n, k, scale=k ** -0.5) if per_image else v.randn(n, k, scale=k ** -0.5)
        return [xs, weight, v.randn(n) if bias else None,
                v.randn(2, 5, 6, n) if residual else None,
                (v.randn(2, 5, 6, n + 4)[..., 2:-2] if strided else v.randn(2, 5, 6, n)) if gate
                else None]

    def bwd(dtype, device):
        return [Values(label + "/grad", dtype, device).randn(2, 5, 6, n), *fwd(dtype, device)]
    return fwd, bwd


def _linear_cases():
    cases = []
    for shape in LINEAR_SHAPES:
        fwd, bwd = _linear(*shape)
        cases += [Case("linear_fwd", shape[0], fwd), Case("linear_bwd", shape[0], bwd)]
    return cases


CASES = (_window_cases() + _channel_cases() + _layer_norm_cases() + _dwconv_cases()
         + _attention_block_cases()
         + _chain_cases()
         + _linear_cases())
assert {c.op for c in CASES} == set(OPS), "every registered op needs cases"


def cases_of(op):
    return [c for c in CASES if c.op == op]


def smallest_case(op):
    """The op's "tiny" case, else its first small one, else its first."""
    cases = cases_of(op)
    return next((c for c in cases if c.label == "tiny"),
                next((c for c in cases if c.small), cases[0]))
