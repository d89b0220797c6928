import pytest
import torch
import torch.nn.functional as F

from asid_fast.tools.errors import UserError
from asid_fast.tools.tiling import tile_layout, tile_starts, tiled_forward


def nearest(x, s=2):
    return F.interpolate(x, scale_factor=s, mode="nearest")


def test_tile_starts_follow_the_authors_rule():
    # stride = tile - overlap = 40; the last tile is flush with the border
    assert tile_starts(64, 64, 40) == [0]
    assert tile_starts(100, 64, 40) == [0, 36]
    assert tile_starts(104, 64, 40) == [0, 40]
    assert tile_starts(200, 64, 40) == [0, 40, 80, 120, 136]


def test_outputs_are_summed_and_divided_by_the_count():
    # 12x20 image, tile = min(64, 12, 20) = 12, overlap 4 -> stride 8: tiles at columns 0 and 8
    # (LR), overlapping on columns 8..11. fn adds its call index (0, then 1) to a pointwise
    # upscale, so the result is +0 left of column 8, +0.5 on the overlap and +1 right of it.
    x = torch.rand(1, 3, 12, 20)
    calls = []

    def fn(t):
        calls.append(t.shape)
        return nearest(t) + (len(calls) - 1)

    y = tiled_forward(fn, x, 2, tile=64, overlap=4)
    assert calls == [(1, 3, 12, 12)] * 2
    offset = y - nearest(x)
    torch.testing.assert_close(offset[..., :16], torch.zeros_like(offset[..., :16]))
    torch.testing.assert_close(offset[..., 16:24], torch.full_like(offset[..., 16:24], 0.5))
    torch.testing.assert_close(offset[..., 24:], torch.ones_like(offset[..., 24:]))


@pytest.mark.parametrize("tile,overlap,batch", [(16, 4, 1), (16, 4, 3), (9, 8, 2), (64, 24, 1)])
def test_pointwise_function_is_reproduced_exactly(tile, overlap, batch):
    # multiples of 1/256: sums of up to a few copies and their division by the count are exact
    x = torch.randint(0, 256, (1, 3, 23, 37)) / 256
    y = tiled_forward(nearest, x, 2, tile, overlap, batch)
    assert torch.equal(y, nearest(x))


def test_whole_image_and_bad_options():
    x = torch.rand(1, 3, 10, 10)
    assert torch.equal(tiled_forward(nearest, x, 2, tile=0), nearest(x))
    with pytest.raises(UserError, match="smaller than --tile"):
        tiled_forward(nearest, x, 2, tile=16, overlap=16)
    with pytest.raises(UserError, match="at least 9"):
        tiled_forward(nearest, x, 2, tile=8, overlap=0)
    with pytest.raises(UserError, match="--batch"):
        tiled_forward(nearest, x, 2, batch=0)


def _layout_before_thin_images(h, w, tile, overlap):
    """The square-tile rule of the authors' tester, as tiled_forward applied it to every image."""
    t = min(tile, h, w)
    stride = t - overlap if t > overlap else t
    starts = [list(range(0, n - t, stride)) + [n - t] for n in (h, w)]
    return t, t, [(i, j) for i in starts[0] for j in starts[1]]


@pytest.mark.parametrize("h,w", [(64, 64), (100, 64), (57, 86), (25, 300), (200, 136), (9, 9)])
def test_layout_is_the_authors_where_the_short_side_exceeds_the_overlap(h, w):
    # eval numbers must not move: same tiles wherever square tiles can overlap
    assert tile_layout(h, w, 64, 24) == _layout_before_thin_images(h, w, 64, 24)


@pytest.mark.parametrize("h,w,tile,overlap", [(10, 160, 64, 24), (160, 10, 64, 24), (24, 200, 64, 24),
                                              (12, 50, 16, 12), (20, 20, 64, 24), (9, 64, 64, 24)])
def test_thin_images_keep_the_overlap_along_every_tiled_axis(h, w, tile, overlap):
    th, tw, corners = tile_layout(h, w, tile, overlap)
    for length, size, starts in ((h, th, sorted({i for i, _ in corners})),
                                 (w, tw, sorted({j for _, j in corners}))):
        assert starts[0] == 0 and starts[-1] + size == length  # covered border to border
        assert all(b + overlap <= a + size for a, b in zip(starts, starts[1:])), starts
    assert (th, tw) in ((h, min(tile, w)), (min(tile, h), w))  # the short axis in one piece


def test_thin_image_tiles_go_through_the_function():
    x = torch.randint(0, 256, (1, 3, 10, 160)) / 256
    calls = []

    def fn(t):
        calls.append(tuple(t.shape))
        return nearest(t)

    assert torch.equal(tiled_forward(fn, x, 2, tile=64, overlap=24), nearest(x))
    assert calls == [(1, 3, 10, 64)] * 4  # columns 0, 40, 80, 96
