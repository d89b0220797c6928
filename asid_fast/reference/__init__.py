"""Pure-PyTorch reference ASID (the ground truth for every fused path)."""
from .model import ASID, check_config, check_input

__all__ = ["ASID", "check_config", "check_input"]
