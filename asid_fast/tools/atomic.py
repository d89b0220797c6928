"""Atomic file writes: write a temp file next to the target, fsync, then rename over it, so an
interrupted run never leaves a half-written file under the final name. :func:`check_writable`
tries the same steps up front, before any expensive work."""
from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

from .errors import UserError


def _temp_file(path: Path) -> str:
    """Create an empty temp file next to ``path`` (the name :func:`atomic_path` uses)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    return tmp


@contextmanager
def atomic_path(path, keep=None):
    """Yield a temporary path in ``path``'s folder; on success it replaces ``path`` atomically,
    on error it is removed. With ``keep``, the file it replaces is first renamed to ``keep``
    (so for a moment neither ``path`` nor the old file is there under ``path``'s name)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_file(path)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the usual permissions
    try:
        yield Path(tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        if keep is not None and path.exists():
            os.replace(path, keep)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_text(path, text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def check_writable(paths) -> None:
    """Raise UserError unless files can be written at every path in ``paths``: no path is a
    folder, and in each target folder (created if missing) a temp file can be made and removed,
    as :func:`atomic_path` will do."""
    probed = set()
    for path in map(Path, paths):
        if path.is_dir():
            raise UserError(f"cannot write {path}: it is a folder")
        folder = path.parent
        if folder in probed:
            continue
        existing = next(p for p in (folder, *folder.parents) if p.exists())
        if not existing.is_dir():
            raise UserError(f"cannot write {path}: {existing} is a file, not a folder")
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise UserError(f"cannot write {path}: cannot create the folder {folder} "
                            f"({e.strerror or e})") from None
        try:
            os.unlink(_temp_file(path))
        except OSError as e:
            raise UserError(f"cannot write {path}: cannot create files in {folder} "
                            f"({e.strerror or e})") from None
        probed.add(folder)
