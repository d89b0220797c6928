"""Drop-in fused ASID: the reference module tree (so the state dict, ``load_checkpoint`` and
``strict=True`` loading are identical), run channels-last end to end on the fused operators.

Every feature map between operators is a (B, H, W, C) tensor with unit channel stride: 1x1
convolutions and Linear layers are per-pixel matmuls (:func:`asid_fast.ops.linear.linear`, which
also reads channel concatenations in place, adds biases and residuals and applies ESA's sigmoid
gate), channel splits are strided views, and q, k, v are views of one projection. The chains
LayerNorm -> 1x1 -> depthwise 3x3 -> GELU / gate -> 1x1 + residual of the gated FFNs, the local
modules and the attention projections are :func:`asid_fast.ops.conv_chain.conv_chain` (one
row-streamed operator on the CPU, its backward another). The attention half of each SLA/SGA
(LayerNorm, projection, window attention, output projection, residual) is
:func:`asid_fast.ops.attention_block.attention_block` (one operator per block at inference: a
window's tiles never leave the CPU kernel's scratch, one Triton program per window on the GPU).
The window operators come from :mod:`asid_fast.ops`. ``backend`` selects the implementation of
every one of them; "reference" computes what the reference model computes.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from . import ops
from .ops import BACKENDS, conv_chain, linear
from .reference import model as R


def _nchw(x):
    """(B, H, W, C) contiguous -> the same memory as a channels_last (B, C, H, W) tensor."""
    return x.permute(0, 3, 1, 2)


def _nhwc(x):
    """(B, C, H, W) -> contiguous (B, H, W, C); free for a channels_last tensor."""
    return x.permute(0, 2, 3, 1).contiguous()


def _w(layer):
    """A 1x1 conv's or a Linear's weight as an (out, in) matrix view."""
    return layer.weight.flatten(1)


def _norm(norm):
    return norm.weight, norm.bias, norm.eps


def _gated_ffn(gfn, norm, x, backend):
    """x + gfn(norm(x)): norm, project_in, dw 3x3 + GELU gate, project_out, residual."""
    return conv_chain(x, _w(gfn.project_in), gfn.dwconv.weight, norm=_norm(norm),
                      epilogue="gate", w_out=_w(gfn.project_out), backend=backend)


def _local_module(lm, x, backend):
    """LM: x + conv_out(SE(GELU(dw3x3(GELU(conv_in(x)))))); the SE scale is folded into
    conv_out's weight per image (z * s) W^T = z (W diag(s))^T."""
    conv_in, _, dw, _, se, conv_out = lm.net.fn
    z = conv_chain(x, _w(conv_in), dw.weight, b_in=conv_in.bias, gelu_in=True, b_dw=dw.bias,
                   epilogue="gelu", backend=backend)
    gate = se.gate
    s = torch.sigmoid(F.linear(F.silu(F.linear(z.mean((1, 2)), gate[1].weight)), gate[3].weight))
    w = _w(conv_out)[None] * s[:, None, :]  # (B, d_out, d_in)
    return linear([z], w, conv_out.bias, x, backend=backend)


def _sam_half(half, t, attn, backend):
    """SLA/SGA on (B, H, W, d): attention (computing or applying ``attn``) + gated FFN."""
    at = half.attn
    norm = _norm(half.norm)
    if half.shared:
        x = ops.shared_attention_block(t, norm, at.to_v.weight, attn, at.to_out[0].weight,
                                       mode=at.mode, window=at.window, backend=backend)
    else:
        x, attn = ops.attention_block(t, norm, at.to_qkv.weight, at.bias(), at.to_out[0].weight,
                                      mode=at.mode, window=at.window, backend=backend)
    return _gated_ffn(half.gfn, half.cnorm, x, backend), attn


def _sam(idb, k, x, attns, backend):
    """SLAk then SGAk (sharing block0's matrices a_{2k-1}, a_{2k} when ``attns`` is given)."""
    shared = attns is not None
    x, a_meso = _sam_half(getattr(idb, f"SLA{k}"), x, attns[2 * k - 2] if shared else None, backend)
    x, a_glob = _sam_half(getattr(idb, f"SGA{k}"), x, attns[2 * k - 1] if shared else None, backend)
    return x, (a_meso, a_glob)


def _channel_attention(ca, norm, x, backend):
    """x + project_out(channel_attention(qkv_dwconv(qkv(norm(x))))). q, k and v are projected
    and convolved apart (qkv_dwconv is depthwise), keeping every map C channels wide."""
    q, k, v = (conv_chain(x, w, dw, norm=_norm(norm), backend=backend)
               for w, dw in zip(_w(ca.qkv).chunk(3), ca.qkv_dwconv.weight.chunk(3)))
    o = ops.channel_attention(q, k, v, ca.temperature, mode=ca.mode, window=ca.window,
                              backend=backend)
    return linear([o], _w(ca.project_out), None, x, backend=backend)


def _cam(cam, x, backend):
    x = _channel_attention(cam.cttn1, cam.canorm1, x, backend)
    x = _gated_ffn(cam.gfn1, cam.cnorm1, x, backend)
    x = _channel_attention(cam.cttn2, cam.canorm2, x, backend)
    return _gated_ffn(cam.gfn2, cam.cnorm2, x, backend)


def _split(x, c):
    """x[..., :c], x[..., c:] as one split, whose gradient is one concatenation (two slices'
    would be two zero-filled maps and a sum)."""
    return x.split((c, x.shape[-1] - c), dim=-1)


def _idb(idb, x, attns, backend):
    c = idb.c
    loc, x = _split(_local_module(idb.LB1, x, backend), c)
    y, a12 = _sam(idb, 1, x, attns, backend)
    x1, x = _split(linear([y, loc], _w(idb.pw1), idb.pw1.bias, backend=backend), c)
    loc, x = _split(_local_module(idb.LB2, x, backend), c)
    y, a34 = _sam(idb, 2, x, attns, backend)
    x2, x = _split(linear([y, loc], _w(idb.pw2), idb.pw2.bias, backend=backend), c)
    loc, x = _split(_local_module(idb.LB3, x, backend), c)
    y, a56 = _sam(idb, 3, x, attns, backend)
    x = linear([x1, x2, y, loc], _w(idb.pw3), idb.pw3.bias, backend=backend)
    return _cam(idb.BlockC, x, backend), a12 + a34 + a56


def _esa(esa, x, backend):
    """ESA on (B, H, W, C): the strided/pooled branch runs as channels_last convolutions."""
    c1_ = linear([x], _w(esa.conv1), esa.conv1.bias, backend=backend)
    c1 = F.conv2d(_nchw(c1_), esa.conv2.weight, esa.conv2.bias, stride=2)
    v = F.max_pool2d(c1, kernel_size=7, stride=3)
    c3 = F.interpolate(F.conv2d(v, esa.conv3.weight, esa.conv3.bias, padding=1),
                       size=x.shape[1:3], mode="bilinear", align_corners=False)
    f = linear([c1_], _w(esa.conv_f), esa.conv_f.bias, _nhwc(c3), backend=backend)  # c3 + conv_f
    return linear([f], _w(esa.conv4), esa.conv4.bias, gate=x, backend=backend)  # x sigmoid(conv4)


def _group(group, x, attns, backend):
    idb = group.residual_layer if attns is not None else group.residual_layer[0]
    y, attns = _idb(idb, x, attns, backend)
    y = linear([y], _w(group.res_end), group.res_end.bias, x, backend=backend)
    return _esa(group.esa, y, backend), attns


class ASID(R.ASID):
    """Fused ASID (variant "asid" or "asid_d8", scale 2/3/4) with the reference's state dict.

    ``backend`` ("auto" | "reference" | "cpu" | "cuda" | "triton") picks the implementation of
    every fused operator; "reference" computes exactly what :class:`asid_fast.reference.ASID`
    computes. forward: (B, 3, H, W) float, any H, W >= 9 -> (B, 3, s*H, s*W).
    """

    def __init__(self, scale: int = 4, variant: str = "asid", backend: str = "auto"):
        super().__init__(scale, variant)
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        self.backend = backend

    def forward(self, x):
        R.check_input(x)
        h, w = x.shape[2:]
        if x.shape[0] == 0:  # no images: what the reference returns (the operators refuse empty maps)
            return x.new_empty(0, 3, h * self.scale, w * self.scale)
        win = R.WINDOW
        x = F.pad(x, (0, (win - w % win) % win, 0, (win - h % win) % win))
        x = x.contiguous(memory_format=torch.channels_last)
        f0 = _nhwc(F.conv2d(x, self.input.weight, self.input.bias, padding=1))
        f, attns = _group(self.block0, f0, None, self.backend)
        for i in range(1, self.num_groups):
            f, _ = _group(getattr(self, f"block{i}"), f, attns, self.backend)
        y = F.conv2d(_nchw(f), self.output.weight, self.output.bias, padding=1) + _nchw(f0)
        up = self.up[0]
        y = F.pixel_shuffle(F.conv2d(y, up.weight, up.bias, padding=1), self.scale)
        return y[:, :, : h * self.scale, : w * self.scale]
