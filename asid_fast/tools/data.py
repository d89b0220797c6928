"""Training data: HR folders (or the DIV2K layout) turned into cached HR/LR arrays and a
deterministic stream of random LR/HR patch pairs.

Sample ``i`` of the stream depends only on (seed, i): its image comes from a per-epoch
permutation, its crop and flip/rotation from a generator seeded with (seed, i). Step ``t`` uses
samples ``t * batch`` to ``(t + 1) * batch - 1``, split evenly across the processes of a
data-parallel run (:class:`StepSampler`). A resumed run therefore sees exactly the batches an
uninterrupted run would, whatever the worker or process count.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from .atomic import atomic_path
from .errors import UserError
from .imageio import list_images, read_rgb8
from .imresize import imresize

HR_DIRS = ("HR", "*_HR")                     # DIV2K layout: HR/ or DIV2K_train_HR/
LR_DIRS = ("LR_bicubic/X{s}", "*_LR_bicubic/X{s}")


def _first_dir(root: Path, patterns, scale: int):
    for pattern in patterns:
        found = sorted(p for p in root.glob(pattern.format(s=scale)) if p.is_dir())
        if found:
            return found[0]
    return None


def find_sources(data_dirs, scale: int) -> list[tuple[Path, Path | None]]:
    """(HR file, LR file or None) for every training image. A folder with an ``HR/`` (or
    ``*_HR/``) subfolder is read in the DIV2K layout, using ``LR_bicubic/X{s}/<stem>x{s}.*``
    when present; any other folder is a plain folder of HR images."""
    sources = []
    for d in data_dirs:
        root = Path(d)
        if not root.is_dir():
            raise UserError(f"training data folder not found: {root}")
        hr_dir = _first_dir(root, HR_DIRS, scale) or root
        lr_dir = _first_dir(root, LR_DIRS, scale) if hr_dir != root else None
        files = list_images(hr_dir)
        if not files:
            raise UserError(f"no images in training folder {hr_dir}")
        for f in files:
            lr = None
            if lr_dir is not None:
                lr = next((p for p in sorted(lr_dir.glob(f"{f.stem}x{scale}.*")) if p.is_file()), None)
                if lr is None:
                    raise UserError(f"DIV2K layout: no LR image {f.stem}x{scale}.* in {lr_dir}")
            sources.append((f, lr))
    return sources


def _cache_key(path: Path) -> str:
    st = path.stat()
    ident = f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}"
    return hashlib.sha1(ident.encode()).hexdigest()[:10]


def _save_npy(path: Path, arr: np.ndarray) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.save(f, arr)


def _cache_pair(hr_path: Path, lr_path: Path | None, scale: int, hr_npy: Path, lr_npy: Path):
    """Decode one training image (and its LR file) and write both arrays; UserError naming
    the file if it cannot be read or the sizes do not match."""
    hr = read_rgb8(hr_path, "training")
    h, w = hr.shape[:2]
    hr = hr[:h - h % scale, :w - w % scale]
    lr = imresize(hr, 1 / scale) if lr_path is None else read_rgb8(lr_path, "training")
    if lr.shape[:2] != (hr.shape[0] // scale, hr.shape[1] // scale):
        raise UserError(f"scale mismatch: {lr_path} is {lr.shape[1]}x{lr.shape[0]}, "
                        f"expected {hr.shape[1] // scale}x{hr.shape[0] // scale} for x{scale}")
    _save_npy(hr_npy, np.ascontiguousarray(hr))
    _save_npy(lr_npy, np.ascontiguousarray(lr))


def build_cache(sources, scale: int, cache_dir, progress: bool = True) -> list[tuple[Path, Path]]:
    """Write (once) HR cropped to a multiple of ``scale`` and its LR as .npy files under
    ``cache_dir``; returns their paths. LR comes from the given file or bicubic ``imresize``.
    Entries are keyed by path, size and mtime, so edited images are re-cached. Every image is
    tried; those that cannot be used are reported together at the end, in one UserError."""
    cache = Path(cache_dir) / f"X{scale}"
    pairs, failures = [], []
    for hr_path, lr_path in tqdm(sources, desc="caching", unit="img", disable=not progress, leave=False):
        key = f"{hr_path.stem}-{_cache_key(hr_path)}"
        hr_npy, lr_npy = cache / f"{key}.hr.npy", cache / f"{key}.lr.npy"
        if not (hr_npy.is_file() and lr_npy.is_file()):
            try:
                _cache_pair(hr_path, lr_path, scale, hr_npy, lr_npy)
            except UserError as e:
                failures.append(str(e))
                continue
        pairs.append((hr_npy, lr_npy))
    if failures:
        more = f"; and {len(failures) - 3} more" if len(failures) > 3 else ""
        raise UserError(f"{len(failures)} of {len(sources)} training images cannot be used (fix or "
                        f"remove them; the others are cached): {'; '.join(failures[:3])}{more}")
    return pairs


def lr_shape(lr_npy: Path) -> tuple[int, ...]:
    return np.load(lr_npy, mmap_mode="r").shape


class PatchStream(torch.utils.data.Dataset):
    """Index ``i`` -> (LR patch, HR patch) as uint8 (3, p, p) and (3, s*p, s*p) tensors.

    An epoch is ``repeat`` passes over the images (in a shuffled order); any i >= 0 is valid.
    Images whose LR side is below ``patch`` are left out.
    """

    def __init__(self, pairs, scale: int, patch: int, seed: int, repeat: int = 1):
        self.pairs = [p for p in pairs if min(lr_shape(p[1])[:2]) >= patch]
        if not self.pairs:
            raise UserError(f"no training image is large enough for {patch}x{patch} LR patches "
                            f"at x{scale}; use a smaller --patch")
        self.skipped = len(pairs) - len(self.pairs)
        self.scale, self.patch, self.seed, self.repeat = scale, patch, seed, repeat
        self._arrays: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._order: tuple[int, np.ndarray] | None = None

    @property
    def epoch_size(self) -> int:
        return len(self.pairs) * self.repeat

    def _image(self, i: int) -> int:
        epoch, k = divmod(i, self.epoch_size)
        if self._order is None or self._order[0] != epoch:
            self._order = (epoch, np.random.default_rng([self.seed, epoch]).permutation(self.epoch_size))
        return int(self._order[1][k]) % len(self.pairs)

    def _arrays_of(self, n: int):
        if n not in self._arrays:
            hr, lr = self.pairs[n]
            self._arrays[n] = (np.load(hr, mmap_mode="r"), np.load(lr, mmap_mode="r"))
        return self._arrays[n]

    def __len__(self) -> int:
        return self.epoch_size

    def __getitem__(self, i: int):
        hr, lr = self._arrays_of(self._image(i))
        rng = np.random.default_rng([self.seed, i, 1])
        p, s = self.patch, self.scale
        y = int(rng.integers(0, lr.shape[0] - p + 1))
        x = int(rng.integers(0, lr.shape[1] - p + 1))
        lr_p = torch.from_numpy(np.array(lr[y:y + p, x:x + p])).permute(2, 0, 1)
        hr_p = torch.from_numpy(np.array(hr[y * s:(y + p) * s, x * s:(x + p) * s])).permute(2, 0, 1)
        flip, rot = int(rng.integers(0, 3)), int(rng.integers(0, 4))
        if flip < 2:  # 0: vertical, 1: horizontal, 2: none
            lr_p, hr_p = lr_p.flip(1 + flip), hr_p.flip(1 + flip)
        if rot:
            lr_p, hr_p = torch.rot90(lr_p, rot, (1, 2)), torch.rot90(hr_p, rot, (1, 2))
        return lr_p.contiguous(), hr_p.contiguous()


class StepSampler(torch.utils.data.Sampler):
    """The sample indices of steps [start, stop) for process ``rank`` of ``world``: step t's
    global batch is indices t * batch ... (t + 1) * batch - 1, and each process takes its
    rank-th equal part (batch // world indices). With one process: range(start * batch,
    stop * batch)."""

    def __init__(self, start: int, stop: int, batch: int, rank: int = 0, world: int = 1):
        self.start, self.stop, self.batch, self.rank = start, stop, batch, rank
        self.part = batch // world

    def __iter__(self):
        for t in range(self.start, self.stop):
            first = t * self.batch + self.rank * self.part
            yield from range(first, first + self.part)

    def __len__(self) -> int:
        return max(0, self.stop - self.start) * self.part
