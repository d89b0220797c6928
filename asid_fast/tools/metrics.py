"""PSNR and SSIM the way SR papers report them: on the Y channel of MATLAB's ``rgb2ycbcr``,
with ``border`` pixels removed on each side; SSIM with an 11x11 Gaussian window (sigma 1.5),
K1 = 0.01, K2 = 0.03 and valid filtering. Images are (H, W, 3) RGB or (H, W) gray arrays with
values in [0, 255] (8-bit scale)."""
from __future__ import annotations

import numpy as np

PEAK = 255.0
WINDOW, SIGMA = 11, 1.5  # SSIM Gaussian window


def rgb_to_y(img: np.ndarray) -> np.ndarray:
    """MATLAB rgb2ycbcr luma on the [0, 255] scale (not rounded): 16 + (65.481 R + 128.553 G +
    24.966 B) for R, G, B in [0, 1]. Gray (H, W) images are treated as R = G = B."""
    x = np.asarray(img, dtype=np.float64) / 255.0
    if x.ndim == 2:
        x = np.repeat(x[..., None], 3, axis=2)
    if x.ndim != 3 or x.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) RGB or (H, W) gray image, got shape {x.shape}")
    return 16.0 + x @ np.array([65.481, 128.553, 24.966])


def _prepare(sr, hr, border):
    if np.shape(sr) != np.shape(hr):
        raise ValueError(f"image sizes differ: {np.shape(sr)} vs {np.shape(hr)}")
    a, b = rgb_to_y(sr), rgb_to_y(hr)
    if border:
        a, b = a[border:-border, border:-border], b[border:-border, border:-border]
    if a.size == 0:
        raise ValueError(f"image {np.shape(hr)} is empty after removing {border} border pixels")
    return a, b


def psnr(sr: np.ndarray, hr: np.ndarray, border: int = 0) -> float:
    """PSNR in dB of Y(sr) against Y(hr) (peak 255) after removing ``border`` pixels."""
    a, b = _prepare(sr, hr, border)
    mse = np.mean((a - b) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(PEAK ** 2 / mse))


def gaussian_window(size: int = WINDOW, sigma: float = SIGMA) -> np.ndarray:
    """Normalised 1-D Gaussian (the 2-D window is its outer product)."""
    x = np.arange(size, dtype=np.float64) - (size - 1) / 2
    g = np.exp(-(x ** 2) / (2 * sigma ** 2))
    return g / g.sum()


def _filter_valid(img: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Separable 'valid' correlation of a 2-D image with outer(g, g)."""
    n = g.size
    rows = np.lib.stride_tricks.sliding_window_view(img, n, axis=0) @ g
    return np.lib.stride_tricks.sliding_window_view(rows, n, axis=1) @ g


def ssim(sr: np.ndarray, hr: np.ndarray, border: int = 0) -> float:
    """Mean SSIM of Y(sr) against Y(hr) after removing ``border`` pixels."""
    a, b = _prepare(sr, hr, border)
    g = gaussian_window()
    if min(a.shape) < g.size:
        raise ValueError(f"SSIM needs at least {g.size}x{g.size} pixels after the border, got {a.shape}")
    c1, c2 = (0.01 * PEAK) ** 2, (0.03 * PEAK) ** 2
    mu_a, mu_b = _filter_valid(a, g), _filter_valid(b, g)
    var_a = _filter_valid(a * a, g) - mu_a ** 2
    var_b = _filter_valid(b * b, g) - mu_b ** 2
    cov = _filter_valid(a * b, g) - mu_a * mu_b
    num = (2 * mu_a * mu_b + c1) * (2 * cov + c2)
    den = (mu_a ** 2 + mu_b ** 2 + c1) * (var_a + var_b + c2)
    return float(np.mean(num / den))
