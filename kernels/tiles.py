"""Index arithmetic shared by the window and channel attention kernels.

Every kernel works on groups of pixels of an unpartitioned channels-last (B, H, W, C) map: a
group is a window (window attention, "window" channel attention) or one offset inside every
window ("cell" channel attention), and its members are the pixels it holds. A :class:`PixelGrid`
describes both as 2-D grids with a row/col step each, so one kernel serves every mode:

    group g of an image   -> (g // group_cols, g % group_cols)  = (gr, gc)
    member m of the group -> (m // member_cols, m % member_cols) = (mr, mc)
    pixel                 =  (gr * group_row + mr * member_row,  gc * group_col + mc * member_col)
"""
from __future__ import annotations

from typing import NamedTuple

import torch
import triton
import triton.language as tl


class PixelGrid(NamedTuple):
    groups: int  # groups per image
    members: int  # pixels per group
    group_cols: int
    member_cols: int
    group_row: int
    group_col: int
    member_row: int
    member_col: int

    def kernel_args(self):
        """The fields the kernels take, in their argument order (``members`` is passed apart)."""
        return (self.groups, self.group_cols, self.member_cols, self.group_row, self.group_col,
                self.member_row, self.member_col)


def pixel_grid(h: int, w: int, window: int, mode: str) -> PixelGrid:
    """Grid of mode "meso"/"global" (window attention) or "window"/"cell" (channel attention)."""
    nx, ny = h // window, w // window
    if mode in ("meso", "window"):  # group = window (X, Y); member (i, j) = pixel (wX + i, wY + j)
        return PixelGrid(nx * ny, window * window, ny, window, window, window, 1, 1)
    if mode == "global":  # group = window (X, Y); member (i, j) = pixel (i*H/w + X, j*W/w + Y)
        return PixelGrid(nx * ny, window * window, ny, window, 1, 1, nx, ny)
    if mode == "cell":  # group = offset (i, j); member (X, Y) = pixel (wX + i, wY + j)
        return PixelGrid(window * window, nx * ny, window, ny, 1, 1, window, window)
    raise ValueError(f"unknown mode {mode!r}")


def tile_size(n: int) -> int:
    """Power-of-two tile extent >= 16 (the smallest tl.dot operand side) holding n."""
    return max(16, triton.next_power_of_2(n))


def warps_for(rows: int, cols: int) -> int:
    """num_warps of a kernel whose main tile is rows x cols (padded extents): 8 from 64 x 64 on,
    where 4 warps spill registers on sm_90 (bench/triton_sm90.py lists each kernel's use), else
    4."""
    return 8 if rows * cols >= 64 * 64 else 4


def accumulator_dtype(dtype: torch.dtype) -> torch.dtype:
    """float64 stays float64; float32, bfloat16 and float16 accumulate in float32."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def dot_precision(dtype: torch.dtype) -> str:
    """The kernels' ``tl.dot`` input precision for operands of ``dtype``: "tf32" for float32 when
    torch allows TF32 in CUDA matmuls (``torch.backends.cuda.matmul.fp32_precision`` is "tf32":
    ``allow_tf32 = True``, ``set_float32_matmul_precision("high")`` or the global
    ``torch.backends.fp32_precision``), else "ieee": exact float32 products by default, float64
    always (float16/bfloat16 ignore it). The interpreter computes every dot exactly."""
    tf32 = dtype == torch.float32 and torch.backends.cuda.matmul.fp32_precision == "tf32"
    return "tf32" if tf32 else "ieee"


def scalar(value: float, device) -> torch.Tensor:
    """``value`` as a one-element float64 tensor on ``device``, for a kernel to load (Triton
    passes Python floats as float32). A fill kernel, no host-to-device copy: safe under CUDA-graph
    capture."""
    return torch.full((1,), value, dtype=torch.float64, device=device)


def fresh_map(x: torch.Tensor) -> torch.Tensor:
    """Empty contiguous tensor of x's shape, dtype and device."""
    return torch.empty(x.shape, dtype=x.dtype, device=x.device)


def map_strides(x: torch.Tensor):
    """(batch, row, col) strides of a (B, H, W, C) map with unit channel stride."""
    return x.stride(0), x.stride(1), x.stride(2)


@triton.jit
def pixel_coords(group, member, groups, group_cols, member_cols, group_row, group_col,
                 member_row, member_col):
    """(batch, row, col) of the pixels ``member`` (a block of member indices) of ``group`` (an
    index over all batches), int64; a tensor's element offsets are b*stride_b + row*stride_h +
    col*stride_w."""
    group = tl.cast(group, tl.int64)
    member = tl.cast(member, tl.int64)
    g = group % groups
    row = (g // group_cols) * group_row + (member // member_cols) * member_row
    col = (g % group_cols) * group_col + (member % member_cols) * member_col
    return group // groups, row, col


@triton.jit
def load_pixels(ptr, stride_b, stride_h, stride_w, b, row, col, ch, mask):
    """(pixels, channels) tile of a map at pixels (b, row, col) and channels ``ch``; elements
    off ``mask`` read as 0."""
    return tl.load(ptr + (b * stride_b + row * stride_h + col * stride_w)[:, None] + ch[None, :],
                   mask=mask, other=0.0)


@triton.jit
def store_pixels(ptr, stride_b, stride_h, stride_w, b, row, col, ch, mask, tile):
    """Inverse of :func:`load_pixels` (casts ``tile`` to the map's dtype)."""
    tl.store(ptr + (b * stride_b + row * stride_h + col * stride_w)[:, None] + ch[None, :],
             tile.to(ptr.dtype.element_ty), mask=mask)
