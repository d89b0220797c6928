"""MATLAB-compatible bicubic ``imresize`` in numpy (the resize SR benchmarks are built with).

Matches MATLAB's algorithm: cubic kernel with a = -0.5; when shrinking, the kernel is stretched
by 1/scale (antialiasing); source indices outside the image are mirrored symmetrically (edge
pixel repeated); the height is resized first, then the width; integer images (uint8/uint16) are
rounded (half away from zero) and saturated to their type after each 1-D pass.
"""
from __future__ import annotations

import math

import numpy as np


def cubic(x: np.ndarray) -> np.ndarray:
    """Keys' cubic convolution kernel with a = -0.5 (MATLAB's ``cubic``)."""
    absx = np.abs(x)
    absx2, absx3 = absx ** 2, absx ** 3
    return ((1.5 * absx3 - 2.5 * absx2 + 1) * (absx <= 1)
            + (-0.5 * absx3 + 2.5 * absx2 - 4 * absx + 2) * ((1 < absx) & (absx <= 2)))


def contributions(in_len: int, out_len: int, scale: float):
    """Weights (out_len, P) and 0-based source indices (out_len, P) for one axis."""
    width = 4.0
    if scale < 1:  # antialiasing: stretch the kernel over 1/scale source pixels
        def kernel(d):
            return scale * cubic(scale * d)
        width = width / scale
    else:
        kernel = cubic
    u = np.arange(1, out_len + 1, dtype=np.float64) / scale + 0.5 * (1 - 1 / scale)
    left = np.floor(u - width / 2)
    taps = math.ceil(width) + 2
    ind = left[:, None] + np.arange(taps)[None, :]  # 1-based, may fall outside [1, in_len]
    weights = kernel(u[:, None] - ind)
    weights = weights / weights.sum(axis=1, keepdims=True)
    mirror = np.concatenate([np.arange(in_len), np.arange(in_len - 1, -1, -1)])
    ind = mirror[np.mod(ind.astype(np.int64) - 1, 2 * in_len)]
    keep = np.any(weights != 0, axis=0)
    return weights[:, keep], ind[:, keep]


def _resize_axis(img: np.ndarray, axis: int, out_len: int, scale: float) -> np.ndarray:
    weights, ind = contributions(img.shape[axis], out_len, scale)
    shape = [1] * img.ndim
    shape[axis] = out_len
    out = np.zeros(img.shape[:axis] + (out_len,) + img.shape[axis + 1:], dtype=np.float64)
    for k in range(weights.shape[1]):
        out += weights[:, k].reshape(shape) * np.take(img, ind[:, k], axis=axis)
    return out


def _to_type(x: np.ndarray, dtype) -> np.ndarray:
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        x = np.sign(x) * np.floor(np.abs(x) + 0.5)
        return np.clip(x, info.min, info.max).astype(dtype)
    return x.astype(dtype)


def imresize(img: np.ndarray, scale: float | None = None, size: tuple[int, int] | None = None):
    """Resize an (H, W) or (H, W, C) image by ``scale`` or to ``size`` = (out_h, out_w).

    With ``scale`` the output is ceil(H*scale) x ceil(W*scale) and ``scale`` itself sets the
    kernel (as MATLAB does); with ``size`` the per-axis scale is out/in. Returns the input dtype;
    float inputs are not rounded.
    """
    img = np.asarray(img)
    if img.ndim not in (2, 3):
        raise ValueError(f"imresize expects an (H, W) or (H, W, C) array, got shape {img.shape}")
    if (scale is None) == (size is None):
        raise ValueError("imresize needs exactly one of scale and size")
    h, w = img.shape[:2]
    if scale is not None:
        if not scale > 0:
            raise ValueError(f"scale must be positive, got {scale}")
        scales = (scale, scale)
        size = (math.ceil(h * scale), math.ceil(w * scale))
    else:
        if min(size) < 1:
            raise ValueError(f"output size must be positive, got {size}")
        scales = (size[0] / h, size[1] / w)
    dtype = img.dtype
    out = img
    # MATLAB resizes the axis with the smaller scale first; a stable sort keeps height first on ties.
    for axis in sorted((0, 1), key=lambda a: scales[a]):
        out = _to_type(_resize_axis(out, axis, size[axis], scales[axis]), dtype)
    return out
