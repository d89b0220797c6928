"""Image reading and writing through Pillow, with bit depth, grayscale and alpha made explicit.

An :class:`Picture` holds the colour planes as an (H, W, C) integer array (C = 1 gray or 3 RGB;
uint8 for 8-bit, uint16 for 16-bit) and the alpha plane separately. 16-bit PNGs with several
channels, which Pillow truncates to 8 bits, go through :mod:`asid_fast.tools.png16`. Writes are
atomic.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from . import png16
from .atomic import atomic_path
from .errors import UserError

ORIENTATION = 0x0112  # EXIF tag; values 5-8 swap width and height
MODES_I16 = ("I;16", "I;16L", "I;16B", "I;16N")  # Pillow's 16-bit gray modes
EXTENSIONS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".bmp": "BMP", ".tif": "TIFF",
              ".tiff": "TIFF", ".webp": "WEBP"}
FORMAT_EXT = {"PNG": ".png", "JPEG": ".jpg", "BMP": ".bmp", "TIFF": ".tif", "WEBP": ".webp"}


@dataclass
class Picture:
    pixels: np.ndarray            # (H, W, 1|3) uint8 or uint16
    alpha: np.ndarray | None      # (H, W) same dtype, or None
    format: str                   # Pillow format name of the source ("PNG", "JPEG", ...)

    @property
    def bits(self) -> int:
        return 16 if self.pixels.dtype == np.uint16 else 8

    @property
    def gray(self) -> bool:
        return self.pixels.shape[2] == 1

    @property
    def hw(self) -> tuple[int, int]:
        """(height, width)."""
        return self.pixels.shape[:2]

    def rgb(self) -> np.ndarray:
        """Colour planes as (H, W, 3) (gray repeated)."""
        return np.repeat(self.pixels, 3, axis=2) if self.gray else self.pixels


def is_image_file(path) -> bool:
    return Path(path).suffix.lower() in EXTENSIONS


def list_images(folder) -> list[Path]:
    """Image files directly inside ``folder``, sorted by name."""
    return sorted(p for p in Path(folder).iterdir() if p.is_file() and is_image_file(p))


def _from_pillow(im: Image.Image, path) -> tuple[np.ndarray, np.ndarray | None]:
    mode = im.mode
    if mode in MODES_I16:
        return np.array(im, dtype=np.uint16)[..., None], None
    if mode == "I":
        arr = np.array(im)
        if arr.min() < 0 or arr.max() > 65535:
            raise UserError(f"{path}: 32-bit integer image with values outside 0..65535 is not supported")
        return arr.astype(np.uint16)[..., None], None
    if mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
    elif mode == "1":
        im = im.convert("L")
    elif mode == "PA":
        im = im.convert("RGBA")
    elif mode in ("CMYK", "YCbCr", "LAB", "HSV", "RGBX"):
        im = im.convert("RGB")
    elif mode not in ("L", "LA", "RGB", "RGBA"):
        raise UserError(f"{path}: unsupported image mode {mode!r} (expected gray, RGB or RGBA)")
    arr = np.array(im)
    if arr.ndim == 2:
        arr = arr[..., None]
    if im.mode in ("LA", "RGBA"):
        return arr[..., :-1], arr[..., -1]
    return arr, None


def read_image(path) -> Picture:
    """Read an image file, turned upright by its EXIF orientation; raises UserError if it is
    missing or unreadable."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"no such image file: {path}")
    try:
        if png16.is_16bit_multichannel(path):
            arr = png16.read(path)
            if arr.shape[2] == 3:
                return Picture(arr, None, "PNG")
            return Picture(arr[..., :-1], arr[..., -1], "PNG")
        with Image.open(path) as im:
            im.load()
            fmt = im.format or "PNG"
            upright = ImageOps.exif_transpose(im)  # as viewers show it (EXIF Orientation)
            pixels, alpha = _from_pillow(upright, path)
            return Picture(pixels, alpha, fmt)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as e:
        raise UserError(f"cannot read image {path}: {e}") from e


@dataclass
class Header:
    hw: tuple[int, int]           # (height, width), upright (EXIF orientation applied)
    bits: int                     # 8 or 16, as read_image will return it
    alpha: bool


def read_header(path) -> Header:
    """Size, bit depth and alpha of an image file from its header, without decoding the
    pixels; raises UserError if it is missing or not an image."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"no such image file: {path}")
    try:
        png = png16.header(path)
        with Image.open(path) as im:
            w, h = im.size
            # a PNG's EXIF is known at open only if stored before the pixels; asking for it
            # otherwise would decode the image
            if (im.format != "PNG" or "exif" in im.info) and im.getexif().get(ORIENTATION, 1) >= 5:
                w, h = h, w
            if png is not None and png[0] == 16 and png[1] in png16.CHANNELS:
                return Header((h, w), 16, png[1] in (4, 6))
            alpha = im.mode in ("LA", "RGBA", "PA") or (im.mode == "P" and "transparency" in im.info)
            bits = 16 if im.mode in MODES_I16 or im.mode == "I" else 8  # as _from_pillow reads them
            return Header((h, w), bits, alpha)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as e:
        raise UserError(f"cannot read image {path}: {e}") from e


def read_rgb8(path, purpose: str = "this") -> np.ndarray:
    """An 8-bit image file as (H, W, 3) uint8 (gray repeated, alpha ignored)."""
    pic = read_image(path)
    if pic.bits != 8:
        raise UserError(f"{path}: {purpose} expects 8-bit images, got {pic.bits}-bit")
    return np.ascontiguousarray(pic.rgb())


def output_format(fmt: str | None, path) -> str:
    """Pillow format name for ``fmt`` (e.g. "png", "jpg") or, if None, from ``path``'s suffix."""
    if fmt is None:
        fmt = Path(path).suffix
    key = fmt.lower() if fmt.startswith(".") else "." + fmt.lower()
    if key not in EXTENSIONS:
        raise UserError(f"unsupported output format {fmt!r}; choose one of "
                        f"{sorted({e.lstrip('.') for e in EXTENSIONS})}")
    return EXTENSIONS[key]


def check_storable(path, fmt: str, bits: int, alpha: bool) -> None:
    """UserError naming ``path`` if Pillow format ``fmt`` cannot store such an image."""
    if bits == 16 and fmt != "PNG":
        raise UserError(f"{path}: {fmt} cannot store 16-bit images; write PNG (--format png)")
    if alpha and fmt in ("JPEG", "BMP"):
        raise UserError(f"{path}: {fmt} cannot store an alpha channel; write PNG (--format png)")


def write_image(path, pic: Picture, fmt: str | None = None, quality: int = 95) -> None:
    """Write ``pic`` atomically in format ``fmt`` (default: from the suffix of ``path``)."""
    fmt = output_format(fmt, path)
    check_storable(path, fmt, pic.bits, pic.alpha is not None)
    planes = pic.pixels if pic.alpha is None else np.concatenate([pic.pixels, pic.alpha[..., None]], 2)
    options = {"quality": quality} if fmt in ("JPEG", "WEBP") else {}
    try:
        with atomic_path(path) as tmp:
            if pic.bits == 16 and planes.shape[2] > 1:
                png16.write(tmp, planes)
            else:
                if pic.bits == 16:
                    im = Image.fromarray(planes[..., 0].astype(np.uint16))  # mode I;16
                else:
                    im = Image.fromarray(planes[..., 0] if planes.shape[2] == 1 else planes)
                im.save(tmp, format=fmt, **options)
    except OSError as e:
        raise UserError(f"cannot write {path}: {e.strerror or e}") from e
