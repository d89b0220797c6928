import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from asid_fast.tools import png16
from asid_fast.tools.errors import UserError
from asid_fast.tools.imageio import Picture, read_image, write_image

CASES = [(3, False, np.uint8), (3, True, np.uint8), (1, False, np.uint8), (1, True, np.uint8),
         (3, False, np.uint16), (3, True, np.uint16), (1, False, np.uint16), (1, True, np.uint16)]


@pytest.mark.parametrize("channels,alpha,dtype", CASES)
def test_png_round_trip_keeps_depth_gray_and_alpha(tmp_path, channels, alpha, dtype):
    rng = np.random.default_rng(0)
    top = np.iinfo(dtype).max + 1
    pic = Picture(rng.integers(0, top, (7, 9, channels)).astype(dtype),
                  rng.integers(0, top, (7, 9)).astype(dtype) if alpha else None, "PNG")
    write_image(tmp_path / "x.png", pic)
    back = read_image(tmp_path / "x.png")
    assert back.pixels.dtype == dtype and back.pixels.shape == pic.pixels.shape
    np.testing.assert_array_equal(back.pixels, pic.pixels)
    if alpha:
        np.testing.assert_array_equal(back.alpha, pic.alpha)
    else:
        assert back.alpha is None


def _paeth(a, b, c):
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    return a if pa <= pb and pa <= pc else (b if pb <= pc else c)


def _filtered_png(img: np.ndarray) -> bytes:
    """A 16-bit RGB PNG whose rows cycle through filter types 0-4 (PNG spec, forward filters)."""
    h, w, _ = img.shape
    rows = img.astype(">u2").reshape(h, -1).view(np.uint8).astype(int)
    bpp, raw = 6, b""
    for y in range(h):
        kind, cur = y % 5, rows[y]
        up = rows[y - 1] if y else np.zeros_like(cur)
        out = []
        for i in range(cur.size):
            a = cur[i - bpp] if i >= bpp else 0
            c = up[i - bpp] if i >= bpp else 0
            pred = [0, a, up[i], (a + up[i]) // 2, _paeth(a, up[i], c)][kind]
            out.append((cur[i] - pred) % 256)
        raw += bytes([kind] + out)

    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))

    return (png16.SIGNATURE + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def test_png16_decodes_every_filter_type(tmp_path):
    rng = np.random.default_rng(2)
    img = rng.integers(0, 65536, (10, 6, 3)).astype(np.uint16)
    path = tmp_path / "f.png"
    path.write_bytes(_filtered_png(img))
    np.testing.assert_array_equal(read_image(path).pixels, img)
    # Pillow decodes the same file to 8 bits (the high bytes): an independent unfilter check.
    np.testing.assert_array_equal(np.array(Image.open(path)), (img >> 8).astype(np.uint8))


@pytest.mark.parametrize("mode", ["P", "1", "CMYK"])
def test_other_pillow_modes_become_rgb_or_gray(tmp_path, mode):
    im = Image.new("RGB", (5, 4), (10, 200, 30)).convert(mode)
    path = tmp_path / ("x.tif" if mode == "CMYK" else "x.png")
    im.save(path)
    pic = read_image(path)
    assert pic.pixels.dtype == np.uint8 and pic.pixels.shape[:2] == (4, 5)
    assert pic.pixels.shape[2] == (1 if mode == "1" else 3)


def test_jpeg_and_format_errors(tmp_path):
    rgba = Picture(np.zeros((4, 4, 3), np.uint8), np.zeros((4, 4), np.uint8), "PNG")
    with pytest.raises(UserError, match="alpha"):
        write_image(tmp_path / "a.jpg", rgba)
    deep = Picture(np.zeros((4, 4, 3), np.uint16), None, "PNG")
    with pytest.raises(UserError, match="16-bit"):
        write_image(tmp_path / "a.jpg", deep)
    with pytest.raises(UserError, match="unsupported output format"):
        write_image(tmp_path / "a.xyz", deep)
    write_image(tmp_path / "a.jpg", Picture(np.full((4, 4, 3), 128, np.uint8), None, "PNG"))
    assert read_image(tmp_path / "a.jpg").format == "JPEG"


def test_unreadable_and_missing_files(tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_text("not an image")
    with pytest.raises(UserError, match="cannot read image"):
        read_image(bad)
    with pytest.raises(UserError, match="no such image"):
        read_image(tmp_path / "missing.png")


def test_failed_write_leaves_nothing(tmp_path, monkeypatch):
    target = tmp_path / "out.png"
    target.write_bytes(b"old")

    def broken_save(self, fp, *args, **kwargs):
        open(fp, "wb").write(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(Image.Image, "save", broken_save)
    with pytest.raises(UserError, match=f"cannot write {target}: disk full"):
        write_image(target, Picture(np.zeros((4, 4, 3), np.uint8), None, "PNG"))
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.png"]


def test_exif_orientation_is_applied(tmp_path):
    img = np.zeros((12, 20, 3), np.uint8)
    img[:4, :6] = 255  # a white block at the top left
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: viewers rotate the stored pixels 90 degrees clockwise
    Image.fromarray(img).save(tmp_path / "rot.jpg", quality=100, exif=exif)
    pic = read_image(tmp_path / "rot.jpg")
    assert pic.format == "JPEG" and pic.pixels.shape == (20, 12, 3)
    shown = np.rot90(img, k=-1)  # clockwise: the block ends up at the top right
    assert np.abs(pic.pixels.astype(int) - shown).max() <= 8  # JPEG rounding only


@pytest.mark.parametrize("channels,alpha,dtype", CASES)
def test_header_tells_what_read_image_returns(tmp_path, channels, alpha, dtype):
    from asid_fast.tools.imageio import read_header

    top = np.iinfo(dtype).max + 1
    rng = np.random.default_rng(0)
    write_image(tmp_path / "x.png", Picture(rng.integers(0, top, (7, 9, channels)).astype(dtype),
                                            rng.integers(0, top, (7, 9)).astype(dtype) if alpha else None,
                                            "PNG"))
    pic = read_image(tmp_path / "x.png")
    head = read_header(tmp_path / "x.png")
    assert (head.hw, head.bits, head.alpha) == (pic.hw, pic.bits, pic.alpha is not None)


def test_header_of_rotated_palette_and_broken_files(tmp_path):
    from asid_fast.tools.imageio import read_header

    exif = Image.Exif()
    exif[0x0112] = 6
    Image.new("RGB", (20, 12)).save(tmp_path / "rot.jpg", exif=exif)
    assert read_header(tmp_path / "rot.jpg").hw == read_image(tmp_path / "rot.jpg").hw == (20, 12)
    im = Image.new("P", (5, 4))
    im.info["transparency"] = 0
    im.save(tmp_path / "p.png", transparency=0)
    assert read_header(tmp_path / "p.png").alpha and read_image(tmp_path / "p.png").alpha is not None
    (tmp_path / "bad.png").write_text("not an image")
    with pytest.raises(UserError, match="cannot read image"):
        read_header(tmp_path / "bad.png")
