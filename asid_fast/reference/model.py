"""Reference ASID: the published architecture in plain PyTorch (see ``ASID_SPEC.md``).

Module and parameter names are part of the checkpoint contract and follow the authors' code.
Feature maps are NCHW between modules; the window operations run on channels-last views through
:mod:`asid_fast.reference.functional`.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from . import functional as RF

WINDOW = 8
CHANNELS = 48
VARIANTS = {"asid": 3, "asid_d8": 8}
SCALES = (2, 3, 4)
MIN_SIZE = 9  # ESA needs padded maps of at least 15 pixels: 9 -> 16


def _nhwc(x):
    return x.permute(0, 2, 3, 1)


def _nchw(x):
    return x.permute(0, 3, 1, 2)


class LayerNorm2d(nn.Module):
    """LayerNorm over channels of an NCHW map, eps 1e-6."""

    def __init__(self, channels: int, eps: float = 1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x):
        return RF.layer_norm2d(x, self.weight, self.bias, self.eps)


class GatedFFN(nn.Module):
    """project_in (1x1, d->2d) -> dw 3x3 -> gelu(a) * b -> project_out (1x1); no biases."""

    def __init__(self, dim: int):
        super().__init__()
        self.project_in = nn.Conv2d(dim, dim * 2, 1, bias=False)
        self.dwconv = nn.Conv2d(dim * 2, dim * 2, 3, padding=1, groups=dim * 2, bias=False)
        self.project_out = nn.Conv2d(dim, dim, 1, bias=False)

    def forward(self, x):
        a, b = self.dwconv(self.project_in(x)).chunk(2, dim=1)
        return self.project_out(F.gelu(a) * b)


class _ChannelMean(nn.Module):
    def forward(self, x):
        return x.mean(dim=(2, 3))


class SqueezeExcitation(nn.Module):
    def __init__(self, dim: int, shrinkage: float = 0.25):
        super().__init__()
        hidden = int(dim * shrinkage)
        self.gate = nn.Sequential(
            _ChannelMean(),
            nn.Linear(dim, hidden, bias=False),
            nn.SiLU(),
            nn.Linear(hidden, dim, bias=False),
            nn.Sigmoid(),
        )

    def forward(self, x):
        return x * self.gate(x)[:, :, None, None]


class _Residual(nn.Module):
    def __init__(self, fn: nn.Module):
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return self.fn(x) + x


class LocalModule(nn.Module):
    """LM: residual MBConv with expansion 1 (keys ``net.fn.{0,2,4,5}``)."""

    def __init__(self, dim: int):
        super().__init__()
        self.net = _Residual(nn.Sequential(
            nn.Conv2d(dim, dim, 1),
            nn.GELU(),
            nn.Conv2d(dim, dim, 3, padding=1, groups=dim),
            nn.GELU(),
            SqueezeExcitation(dim),
            nn.Conv2d(dim, dim, 1),
        ))

    def forward(self, x):
        return self.net(x)


class ComputeAttention(nn.Module):
    """Single-head window attention that computes (and returns) its attention matrix."""

    def __init__(self, dim: int, mode: str, window: int = WINDOW):
        super().__init__()
        self.mode, self.window = mode, window
        self.to_qkv = nn.Linear(dim, dim * 3, bias=False)
        self.rel_pos_bias = nn.Embedding((2 * window - 1) ** 2, 1)
        self.to_out = nn.Sequential(nn.Linear(dim, dim, bias=False))
        self.register_buffer("rel_pos_index", RF.relative_position_index(window), persistent=False)

    def bias(self):
        """The gathered (w*w, w*w) relative-position bias."""
        return self.rel_pos_bias(self.rel_pos_index).squeeze(-1)

    def forward(self, x):
        """x: (B, H, W, d) normalised tokens -> (to_out(A v), A)."""
        q, k, v = self.to_qkv(x).chunk(3, dim=-1)
        out, attn = RF.window_attention(q, k, v, self.bias(), mode=self.mode, window=self.window)
        return self.to_out(out), attn


class SharedAttention(nn.Module):
    """Applies a stored attention matrix: to_out(A to_v(x))."""

    def __init__(self, dim: int, mode: str, window: int = WINDOW):
        super().__init__()
        self.mode, self.window = mode, window
        self.to_v = nn.Linear(dim, dim, bias=False)
        self.to_out = nn.Sequential(nn.Linear(dim, dim, bias=False))

    def forward(self, x, attn):
        out = RF.shared_window_attention(attn, self.to_v(x), mode=self.mode, window=self.window)
        return self.to_out(out)


class SpatialAttentionHalf(nn.Module):
    """SLA (mode "meso") or SGA (mode "global"): attention block + gated FFN, both residual."""

    def __init__(self, dim: int, mode: str, shared: bool):
        super().__init__()
        self.shared = shared
        self.norm = nn.LayerNorm(dim)
        self.attn = SharedAttention(dim, mode) if shared else ComputeAttention(dim, mode)
        self.cnorm = LayerNorm2d(dim)
        self.gfn = GatedFFN(dim)

    def forward(self, x, attn=None):
        t = _nhwc(x)
        if self.shared:
            o = self.attn(self.norm(t), attn)
        else:
            o, attn = self.attn(self.norm(t))
        x = _nchw(o + t)
        x = self.gfn(self.cnorm(x)) + x
        return x, attn


class ChannelAttention(nn.Module):
    """Channel attention per pixel group ("window": 8x8 windows, "cell": offsets in the cell)."""

    def __init__(self, dim: int, mode: str, window: int = WINDOW):
        super().__init__()
        self.mode, self.window = mode, window
        self.temperature = nn.Parameter(torch.ones(1, 1, 1))
        self.qkv = nn.Conv2d(dim, dim * 3, 1, bias=False)
        self.qkv_dwconv = nn.Conv2d(dim * 3, dim * 3, 3, padding=1, groups=dim * 3, bias=False)
        self.project_out = nn.Conv2d(dim, dim, 1, bias=False)

    def forward(self, x):
        q, k, v = _nhwc(self.qkv_dwconv(self.qkv(x))).chunk(3, dim=-1)
        out = RF.channel_attention(q, k, v, self.temperature, mode=self.mode, window=self.window)
        return self.project_out(_nchw(out))


class CAM(nn.Module):
    """``BlockC``: window channel attention, FFN, cell channel attention, FFN (all residual)."""

    def __init__(self, dim: int):
        super().__init__()
        self.canorm1, self.canorm2 = LayerNorm2d(dim), LayerNorm2d(dim)
        self.cnorm1, self.cnorm2 = LayerNorm2d(dim), LayerNorm2d(dim)
        self.cttn1 = ChannelAttention(dim, "window")
        self.cttn2 = ChannelAttention(dim, "cell")
        self.gfn1, self.gfn2 = GatedFFN(dim), GatedFFN(dim)

    def forward(self, x):
        x = self.cttn1(self.canorm1(x)) + x
        x = self.gfn1(self.cnorm1(x)) + x
        x = self.cttn2(self.canorm2(x)) + x
        x = self.gfn2(self.cnorm2(x)) + x
        return x


class IDB(nn.Module):
    """Information distillation block. ``shared`` groups reuse block0's six attention matrices."""

    def __init__(self, dim: int = CHANNELS, shared: bool = False):
        super().__init__()
        c = dim // 4
        self.c = c
        self.LB1, self.LB2, self.LB3 = LocalModule(dim), LocalModule(3 * c), LocalModule(2 * c)
        for k, width in ((1, 3 * c), (2, 2 * c), (3, c)):
            setattr(self, f"SLA{k}", SpatialAttentionHalf(width, "meso", shared))
            setattr(self, f"SGA{k}", SpatialAttentionHalf(width, "global", shared))
        self.pw1 = nn.Conv2d(dim, dim, 1)
        self.pw2 = nn.Conv2d(3 * c, 3 * c, 1)
        self.pw3 = nn.Conv2d(dim, dim, 1)
        self.BlockC = CAM(dim)

    def _sam(self, k, x, attns):
        """SLAk then SGAk; returns features and the two matrices used."""
        shared = attns is not None
        x, a_meso = getattr(self, f"SLA{k}")(x, attns[2 * k - 2] if shared else None)
        x, a_glob = getattr(self, f"SGA{k}")(x, attns[2 * k - 1] if shared else None)
        return x, (a_meso, a_glob)

    def forward(self, x, attns=None):
        c = self.c
        x = self.LB1(x)
        loc = x[:, :c]
        x, a12 = self._sam(1, x[:, c:], attns)
        x = self.pw1(torch.cat((x, loc), 1))
        x1 = x[:, :c]
        x = self.LB2(x[:, c:])
        loc = x[:, :c]
        x, a34 = self._sam(2, x[:, c:], attns)
        x = self.pw2(torch.cat((x, loc), 1))
        x2 = x[:, :c]
        x = self.LB3(x[:, c:])
        loc = x[:, :c]
        x, a56 = self._sam(3, x[:, c:], attns)
        x = self.pw3(torch.cat((x1, x2, x, loc), 1))
        return self.BlockC(x), a12 + a34 + a56


class ESA(nn.Module):
    """Enhanced spatial attention (Liu et al. 2020) with ``esa_channels`` = 16."""

    def __init__(self, esa_channels: int, dim: int):
        super().__init__()
        f = esa_channels
        self.conv1 = nn.Conv2d(dim, f, 1)
        self.conv_f = nn.Conv2d(f, f, 1)
        self.conv2 = nn.Conv2d(f, f, 3, stride=2, padding=0)
        self.conv3 = nn.Conv2d(f, f, 3, padding=1)
        self.conv4 = nn.Conv2d(f, dim, 1)

    def forward(self, x):
        c1_ = self.conv1(x)
        c1 = self.conv2(c1_)
        v = F.max_pool2d(c1, kernel_size=7, stride=3)
        c3 = F.interpolate(self.conv3(v), size=x.shape[2:], mode="bilinear", align_corners=False)
        m = torch.sigmoid(self.conv4(c3 + self.conv_f(c1_)))
        return x * m


class Group(nn.Module):
    """``blockN``: esa(res_end(idb(x)) + x); block0 computes attention, the others share it."""

    def __init__(self, dim: int = CHANNELS, shared: bool = False):
        super().__init__()
        idb = IDB(dim, shared)
        # Key quirk of the published checkpoints: block0's IDB sits in a one-element Sequential.
        self.residual_layer = idb if shared else nn.Sequential(idb)
        self.res_end = nn.Conv2d(dim, dim, 1)
        self.esa = ESA(16, dim)

    def forward(self, x, attns=None):
        idb = self.residual_layer if attns is not None else self.residual_layer[0]
        y, attns = idb(x, attns)
        return self.esa(self.res_end(y) + x), attns


def check_input(x, scale: int | None = None) -> None:
    """Raise ValueError unless x is a float (B, 3, H, W) tensor with H, W >= 9."""
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"expected a torch.Tensor of shape (B, 3, H, W), got {type(x).__name__}")
    if x.dim() != 4:
        raise ValueError(f"expected a 4-D (B, 3, H, W) tensor, got shape {tuple(x.shape)}")
    if x.shape[1] != 3:
        raise ValueError(f"expected 3 (RGB) channels in dim 1, got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise ValueError(f"expected a floating-point tensor (float32/float64/bf16/fp16), got {x.dtype}")
    if x.shape[2] < MIN_SIZE or x.shape[3] < MIN_SIZE:
        raise ValueError(f"image too small: ASID needs H, W >= {MIN_SIZE}, got {tuple(x.shape[2:])}")


def check_config(scale: int, variant: str) -> int:
    """Validate (scale, variant); returns the number of groups."""
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {SCALES}, got {scale!r}")
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {tuple(VARIANTS)}, got {variant!r}")
    return VARIANTS[variant]


class ASID(nn.Module):
    """ASID (variant "asid", 3 groups) or ASID-D8 ("asid_d8", 8 groups) for x2/x3/x4.

    forward: (B, 3, H, W) float -> (B, 3, s*H, s*W). The authors' checkpoints (and ours) expect
    RGB scaled to [-1, 1] (``x / 255 * 2 - 1``; output mapped back with ``(y + 1) / 2``). Any
    H, W >= 9: the input is zero-padded at the bottom/right to multiples of 8 and the output
    cropped back.
    """

    def __init__(self, scale: int = 4, variant: str = "asid"):
        super().__init__()
        groups = check_config(scale, variant)
        self.scale, self.variant = scale, variant
        c = CHANNELS
        self.input = nn.Conv2d(3, c, 3, padding=1)
        for i in range(groups):
            setattr(self, f"block{i}", Group(c, shared=i > 0))
        self.num_groups = groups
        self.output = nn.Conv2d(c, c, 3, padding=1)
        self.up = nn.Sequential(nn.Conv2d(c, 3 * scale * scale, 3, padding=1), nn.PixelShuffle(scale))

    def forward(self, x):
        check_input(x)
        h, w = x.shape[2:]
        x = F.pad(x, (0, (WINDOW - w % WINDOW) % WINDOW, 0, (WINDOW - h % WINDOW) % WINDOW))
        f0 = self.input(x)
        f, attns = self.block0(f0)
        for i in range(1, self.num_groups):
            f, _ = getattr(self, f"block{i}")(f, attns)
        y = self.up(self.output(f) + f0)
        return y[:, :, : h * self.scale, : w * self.scale]
