"""Tiled inference as in the authors' tester: square LR tiles of side ``tile`` (at most the
image's shorter side) at stride ``tile - overlap``, the last tile flush with the border; the
upscaled tiles are summed and divided by the number of tiles covering each output pixel.

One departure, for thin images only: when the shorter side is at most ``overlap``, square tiles
of that side could not overlap and would leave seams, so the tiles span the short axis whole
and keep ``tile`` and ``overlap`` along the other."""
from __future__ import annotations

from typing import Callable

import torch
from tqdm import tqdm

from .errors import UserError


def tile_starts(length: int, tile: int, stride: int) -> list[int]:
    """Start offsets along one axis: 0, stride, 2*stride, ... below length - tile, then
    length - tile (just 0 when one tile spans the axis)."""
    if length <= tile:
        return [0]
    return list(range(0, length - tile, stride)) + [length - tile]


def tile_layout(h: int, w: int, tile: int, overlap: int) -> tuple[int, int, list[tuple[int, int]]]:
    """(tile height, tile width, top-left corners) covering an h x w image; see the module
    docstring."""
    side = min(tile, h, w)
    th, tw = (side, side) if side > overlap else (min(tile, h), min(tile, w))
    return th, tw, [(i, j) for i in tile_starts(h, th, th - overlap)
                    for j in tile_starts(w, tw, tw - overlap)]


def check_tiling(tile: int, overlap: int, batch: int = 1) -> None:
    """UserError unless --tile, --overlap and --batch are usable together."""
    from ..reference.model import MIN_SIZE

    if tile < 0 or overlap < 0:
        raise UserError(f"--tile and --overlap must be >= 0, got {tile} and {overlap}")
    if 0 < tile < MIN_SIZE:
        raise UserError(f"--tile must be 0 (whole image) or at least {MIN_SIZE}, got {tile}")
    if tile and overlap >= tile:
        raise UserError(f"--overlap ({overlap}) must be smaller than --tile ({tile})")
    if batch < 1:
        raise UserError(f"--batch must be >= 1, got {batch}")


def tiled_forward(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, scale: int,
                  tile: int = 64, overlap: int = 24, batch: int = 1, progress: bool = False):
    """Upscale ``x`` (1, C, H, W) with ``fn`` ((N, C, h, w) -> (N, C, s*h, s*w)) tile by tile.

    ``tile`` = 0 runs the whole image at once. ``batch`` tiles go through ``fn`` together. The
    result is float32 on ``x``'s device.
    """
    check_tiling(tile, overlap, batch)
    if x.dim() != 4 or x.shape[0] != 1:
        raise ValueError(f"expected a (1, C, H, W) tensor, got shape {tuple(x.shape)}")
    _, c, h, w = x.shape
    if tile == 0:
        return fn(x).float()
    th, tw, corners = tile_layout(h, w, tile, overlap)
    out = torch.zeros(1, c, h * scale, w * scale, dtype=torch.float32, device=x.device)
    count = torch.zeros(1, 1, h * scale, w * scale, dtype=torch.float32, device=x.device)
    sh, sw = th * scale, tw * scale
    for k in tqdm(range(0, len(corners), batch), desc="tiles", unit="batch", leave=False,
                  disable=not progress or len(corners) <= batch):
        group = corners[k:k + batch]
        y = fn(torch.cat([x[..., i:i + th, j:j + tw] for i, j in group])).float()
        for n, (i, j) in enumerate(group):
            out[..., i * scale:i * scale + sh, j * scale:j * scale + sw] += y[n:n + 1]
            count[..., i * scale:i * scale + sh, j * scale:j * scale + sw] += 1
    return out / count
