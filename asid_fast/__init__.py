"""asid_fast: fast, exact ASID super-resolution (reference model, fused ops, tools)."""
from . import reference
from .checkpoint import CheckpointError, load_checkpoint
from .pretrained import pretrained

__all__ = ["CheckpointError", "load_checkpoint", "pretrained", "reference"]
