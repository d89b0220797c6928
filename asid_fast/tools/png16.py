"""Minimal codec for 16-bit PNGs with several channels (gray+alpha, RGB, RGBA), which Pillow
silently reduces to 8 bits (16-bit plain gray works in Pillow and is left to it).

Reading supports every filter type but not interlacing; writing uses filter 0 (None) per row.
Everything else goes through Pillow (see :mod:`asid_fast.tools.imageio`).
"""
from __future__ import annotations

import struct
import zlib

import numpy as np

SIGNATURE = b"\x89PNG\r\n\x1a\n"
CHANNELS = {4: 2, 2: 3, 6: 4}  # PNG colour type -> channels (gray+alpha, RGB, RGBA)


def header(path) -> tuple[int, int] | None:
    """(bit depth, colour type) from a PNG's IHDR, or None if ``path`` is not a PNG."""
    with open(path, "rb") as f:
        head = f.read(29)
    if len(head) < 29 or head[:8] != SIGNATURE or head[12:16] != b"IHDR":
        return None
    return head[24], head[25]


def is_16bit_multichannel(path) -> bool:
    h = header(path)
    return h is not None and h[0] == 16 and h[1] in CHANNELS


def _chunks(data: bytes):
    pos = 8
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        yield kind, data[pos + 8:pos + 8 + length]
        pos += 12 + length


def _paeth(a: int, b: int, c: int) -> int:
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    return a if pa <= pb and pa <= pc else (b if pb <= pc else c)


def _average(a: int, b: int, c: int) -> int:
    return (a + b) >> 1


def _sequential_row(line: np.ndarray, prev: np.ndarray, bpp: int, predict) -> np.ndarray:
    """Undo a filter whose prediction uses the already decoded left byte: out[i] = line[i] +
    predict(left a, up b, up-left c) mod 256, byte by byte."""
    out = bytearray(line.tobytes())
    up = prev.tobytes()
    for i in range(len(out)):
        a = out[i - bpp] if i >= bpp else 0
        c = up[i - bpp] if i >= bpp else 0
        out[i] = (out[i] + predict(a, up[i], c)) & 0xFF
    return np.frombuffer(bytes(out), dtype=np.uint8)


def _unfilter(raw: np.ndarray, height: int, stride: int, bpp: int) -> np.ndarray:
    rows = raw.reshape(height, stride + 1)
    out = np.zeros((height, stride), dtype=np.uint8)
    prev = np.zeros(stride, dtype=np.uint8)
    for y in range(height):
        kind, line = rows[y, 0], rows[y, 1:]
        if kind == 0:
            cur = line
        elif kind == 1:  # Sub: running sum over pixels, byte-wise modulo 256
            cur = np.cumsum(line.reshape(-1, bpp), axis=0, dtype=np.uint8).reshape(-1)
        elif kind == 2:  # Up
            cur = line + prev
        elif kind in (3, 4):  # Average, Paeth
            cur = _sequential_row(line, prev, bpp, _average if kind == 3 else _paeth)
        else:
            raise ValueError(f"corrupt PNG: unknown filter type {kind}")
        out[y] = cur
        prev = out[y]
    return out


def read(path) -> np.ndarray:
    """Decode a 16-bit gray+alpha/RGB/RGBA PNG to an (H, W, 2|3|4) uint16 array."""
    data = open(path, "rb").read()
    ihdr, idat = None, []
    for kind, body in _chunks(data):
        if kind == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
    if ihdr is None:
        raise ValueError("not a PNG file (no IHDR)")
    width, height, depth, colour, _, _, interlace = ihdr
    if depth != 16 or colour not in CHANNELS:
        raise ValueError(f"not a 16-bit gray+alpha/RGB/RGBA PNG (bit depth {depth}, colour type {colour})")
    if interlace:
        raise ValueError("interlaced 16-bit multi-channel PNGs are not supported; save it non-interlaced")
    channels = CHANNELS[colour]
    bpp = 2 * channels
    try:
        raw = np.frombuffer(zlib.decompress(b"".join(idat)), dtype=np.uint8)
    except zlib.error as e:
        raise ValueError(f"corrupt PNG data: {e}") from e
    if raw.size != height * (width * bpp + 1):
        raise ValueError("corrupt or truncated PNG data")
    pixels = _unfilter(raw, height, width * bpp, bpp)
    return pixels.view(">u2").reshape(height, width, channels).astype(np.uint16)


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def write(path, img: np.ndarray) -> None:
    """Encode an (H, W, 2|3|4) uint16 array as a 16-bit gray+alpha/RGB/RGBA PNG."""
    colours = {c: t for t, c in CHANNELS.items()}
    if img.dtype != np.uint16 or img.ndim != 3 or img.shape[2] not in colours:
        raise ValueError(f"expected an (H, W, 2|3|4) uint16 array, got {img.dtype} {img.shape}")
    height, width, channels = img.shape
    colour = colours[channels]
    rows = img.astype(">u2").reshape(height, -1).view(np.uint8)
    raw = np.concatenate([np.zeros((height, 1), np.uint8), rows], axis=1).tobytes()
    ihdr = struct.pack(">IIBBBBB", width, height, 16, colour, 0, 0, 0)
    with open(path, "wb") as f:
        f.write(SIGNATURE + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(raw, 6))
                + _chunk(b"IEND", b""))
