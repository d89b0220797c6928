"""MATLAB-compatible bicubic imresize, checked against cases derived by hand.

Derivation of the x1/2 case (length 4 -> 2). MATLAB stretches the a = -0.5 cubic by 1/scale = 2:
h(d) = 0.5 * cubic(0.5 d), support |d| < 4, P = ceil(8) + 2 = 10 taps. Output 1 sits at source
coordinate u = 1/0.5 + 0.5 (1 - 2) = 1.5, taps at 1-based indices -3..6, distances 4.5 .. -4.5:
  cubic(0.25) = 0.8671875, cubic(0.75) = 0.2265625, cubic(1.25) = -0.0703125,
  cubic(1.75) = -0.0234375, cubic(2.25) = 0
so the weights are (in 128ths) -1.5, -4.5, 14.5, 55.5, 55.5, 14.5, -4.5, -1.5 (sum 128, so the
normalisation is exact). Mirroring (symmetric, edge repeated) maps indices -2..5 to pixels
3, 2, 1, 1, 2, 3, 4, 4, giving out1 = (70 p1 + 51 p2 + 13 p3 - 6 p4) / 128 and, by symmetry,
out2 = (-6 p1 + 13 p2 + 51 p3 + 70 p4) / 128.

x2 upscaling has no stretch: output 1 at u = 0.75, taps -1..4 (after dropping zero weights
0..3): cubic(1.75), cubic(0.75), cubic(0.25), cubic(1.25) = -3, 29, 111, -9 (128ths); index 0
mirrors to pixel 1, so out1 = (140 p1 - 12 p2) / 128. Output 2 at u = 1.25: -9, 111, 29, -3 on
indices 0..3, so out2 = (102 p1 + 29 p2 - 3 p3) / 128.
"""
import numpy as np
import pytest

from asid_fast.tools.imresize import contributions, cubic, imresize


def dense(in_len, out_len, scale):
    """The (out, in) resampling matrix of one axis."""
    weights, ind = contributions(in_len, out_len, scale)
    m = np.zeros((out_len, in_len))
    for r in range(out_len):
        np.add.at(m[r], ind[r], weights[r])
    return m


def test_cubic_kernel_values():
    x = np.array([0, 0.25, 0.75, 1.25, 1.75, 2.0, 2.25, -0.25])
    want = [1, 0.8671875, 0.2265625, -0.0703125, -0.0234375, 0, 0, 0.8671875]
    np.testing.assert_array_equal(cubic(x), want)


def test_downscale_half_weights_by_hand():
    want = np.array([[70, 51, 13, -6], [-6, 13, 51, 70]]) / 128
    np.testing.assert_array_equal(dense(4, 2, 0.5), want)


def test_upscale_x2_weights_by_hand():
    m = dense(3, 6, 2.0)
    np.testing.assert_array_equal(m[0], np.array([140, -12, 0]) / 128)
    np.testing.assert_array_equal(m[1], np.array([102, 29, -3]) / 128)
    np.testing.assert_array_equal(m[5], m[0][::-1])  # mirror symmetry of the last output


def test_uint8_rounds_after_each_pass():
    # Height pass (columns, 128ths): 2550 3550 14450 8350 / 650 9250 23950 14050
    #   -> rounded: [20 28 113 65] / [5 72 187 110]
    # Width pass: row 1: (70*20 + 51*28 + 13*113 - 6*65)/128 = 3907/128 = 30.52 -> 31,
    #   (-6*20 + 13*28 + 51*113 + 70*65)/128 = 10557/128 = 82.48 -> 82; row 2: 5793/128 = 45.26
    #   -> 45, 18143/128 = 141.74 -> 142. Rounding only once at the end would give 30 and 83
    #   (497300/16384 = 30.35, 1352300/16384 = 82.54), so this case tells the two apart.
    x = np.array([[0, 0, 100, 0], [50, 50, 100, 100], [0, 100, 250, 250], [0, 50, 150, 0]], np.uint8)
    out = imresize(x, 0.5)
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, [[31, 82], [45, 142]])


def test_float_input_is_not_rounded():
    x = np.array([[0, 0, 100, 0], [50, 50, 100, 100], [0, 100, 250, 250], [0, 50, 150, 0]], float)
    np.testing.assert_allclose(imresize(x, 0.5), [[497300, 1352300], [744300, 2321300]] / np.float64(16384),
                               rtol=0, atol=1e-12)


def test_saturates_and_keeps_uint16():
    x = np.zeros((4, 4), np.uint16)
    x[:, 2:] = 65535  # the step overshoots above 65535 and below 0: both must saturate
    out = imresize(x, 2.0)
    exact = imresize(x.astype(float), 2.0)  # the height pass is exact: columns are constant
    assert exact.max() > 65535 and exact.min() < 0
    assert out.dtype == np.uint16
    np.testing.assert_array_equal(out, np.clip(np.floor(exact + 0.5), 0, 65535))


@pytest.mark.parametrize("scale", [1 / 2, 1 / 3, 1 / 4, 2, 3, 4])
def test_shapes_channels_and_constant_images(scale):
    x = np.full((10, 7, 3), 77, np.uint8)
    out = imresize(x, scale)
    assert out.shape == (int(np.ceil(10 * scale)), int(np.ceil(7 * scale)), 3)
    assert (out == 77).all()


def test_channels_are_independent():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (9, 12, 3), dtype=np.uint8)
    out = imresize(x, 1 / 3)
    for c in range(3):
        np.testing.assert_array_equal(out[..., c], imresize(x[..., c], 1 / 3))


def test_size_argument_and_errors():
    x = np.zeros((6, 8), np.uint8)
    assert imresize(x, size=(3, 16)).shape == (3, 16)
    with pytest.raises(ValueError, match="exactly one"):
        imresize(x)
    with pytest.raises(ValueError, match="positive"):
        imresize(x, -1)
    with pytest.raises(ValueError, match=r"\(H, W\)"):
        imresize(np.zeros(5), 2)
