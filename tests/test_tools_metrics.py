import math

import numpy as np
import pytest

from asid_fast.tools.metrics import gaussian_window, psnr, rgb_to_y, ssim


def test_rgb_to_y_matches_matlab_formula():
    assert rgb_to_y(np.zeros((1, 1, 3)))[0, 0] == pytest.approx(16)
    assert rgb_to_y(np.full((1, 1, 3), 255.0))[0, 0] == pytest.approx(235)
    px = np.array([[[255, 0, 0]]], float)
    assert rgb_to_y(px)[0, 0] == pytest.approx(16 + 65.481)
    gray = np.array([[0, 255]], float)
    np.testing.assert_allclose(rgb_to_y(gray), [[16, 235]])


def test_psnr_of_a_known_error_and_border():
    rng = np.random.default_rng(0)
    hr = rng.integers(0, 250, (20, 20, 3)).astype(float)
    sr = hr + 1  # Y moves by (65.481 + 128.553 + 24.966) / 255 = 219/255 everywhere
    assert psnr(sr, hr) == pytest.approx(20 * math.log10(255 / (219 / 255)), abs=1e-9)
    sr2 = sr.copy()
    sr2[:2] += 50  # only the removed border differs more
    assert psnr(sr2, hr, border=2) == pytest.approx(psnr(sr, hr), abs=1e-9)
    assert psnr(hr, hr) == math.inf


def test_ssim_constant_images_by_hand():
    # Constant images: means a and b, zero variances and covariance, so
    # SSIM = (2ab + C1) / (a^2 + b^2 + C1) with a, b the Y values.
    a_rgb, b_rgb = np.full((16, 16, 3), 100.0), np.full((16, 16, 3), 120.0)
    a, b = 16 + 100 / 255 * 219, 16 + 120 / 255 * 219
    c1 = (0.01 * 255) ** 2
    assert ssim(a_rgb, b_rgb) == pytest.approx((2 * a * b + c1) / (a * a + b * b + c1), abs=1e-12)
    assert ssim(a_rgb, a_rgb) == pytest.approx(1.0)


def test_ssim_is_valid_filtering():
    # The map is (H-10) x (W-10): a change confined to the outer 5 pixels of a 2-pixel-cropped
    # image is still seen, a change confined to the 2-pixel border is not.
    rng = np.random.default_rng(1)
    hr = rng.integers(0, 256, (30, 30, 3)).astype(float)
    sr = hr.copy()
    sr[:2] = 0
    assert ssim(sr, hr, border=2) == pytest.approx(1.0)
    assert ssim(sr, hr, border=1) < 1.0


def test_gaussian_window():
    g = gaussian_window()
    assert g.size == 11 and g.sum() == pytest.approx(1)
    assert g[5] / g[6] == pytest.approx(math.exp(1 / (2 * 1.5 ** 2)))


def test_bad_inputs():
    with pytest.raises(ValueError, match="differ"):
        psnr(np.zeros((4, 4, 3)), np.zeros((4, 5, 3)))
    with pytest.raises(ValueError, match="empty"):
        psnr(np.zeros((4, 4, 3)), np.zeros((4, 4, 3)), border=2)
    with pytest.raises(ValueError, match="at least 11x11"):
        ssim(np.zeros((12, 12, 3)), np.zeros((12, 12, 3)), border=1)
