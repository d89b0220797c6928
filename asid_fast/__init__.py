"""asid_fast: fast, exact ASID super-resolution (reference model, fused ops, tools)."""
from . import reference
from .checkpoint import CheckpointError, load_checkpoint
from .cuda_graphs import GraphedModel, graphed
from .model import ASID
from .shipped_weights import pretrained
from .traced import TracedModel

__all__ = ["ASID", "CheckpointError", "GraphedModel", "TracedModel", "graphed", "load_checkpoint",
           "pretrained", "reference"]
