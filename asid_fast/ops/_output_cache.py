"""The CPU output cache of the compiled extension (csrc/ops/output_cache.h): the "cpu" backend's
ops take their output tensors from freed blocks of the same size instead of fresh memory, which
the system maps page by page on first touch. A model asks for the same sizes at every call, so
after the first call its outputs cost no page faults. Freed blocks stay cached up to a limit
(default 1 GiB), least recently freed dropped first; like ``torch.cuda.empty_cache``,
:func:`empty_output_cache` hands them back. Without the extension these do nothing.
"""
from __future__ import annotations

from ._registry import extension

__all__ = ["empty_output_cache", "output_cache_bytes", "set_output_cache_limit"]


def output_cache_bytes() -> int:
    """Bytes held in freed CPU output blocks (0 without the extension)."""
    ext = extension()
    return ext.output_cache_bytes() if ext is not None else 0


def set_output_cache_limit(limit_bytes: int) -> None:
    """Keep at most ``limit_bytes`` of freed CPU output blocks (0 keeps none)."""
    if not isinstance(limit_bytes, int) or isinstance(limit_bytes, bool) or limit_bytes < 0:
        raise ValueError(f"limit_bytes must be an int >= 0, got {limit_bytes!r}")
    ext = extension()
    if ext is not None:
        ext.set_output_cache_limit(limit_bytes)


def empty_output_cache() -> None:
    """Hand every freed CPU output block back to the system."""
    ext = extension()
    if ext is not None:
        ext.empty_output_cache()
