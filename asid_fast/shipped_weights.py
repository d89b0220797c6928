"""Weights that ship inside the package: ASID x2/x3/x4 trained by us with ``asid-fast train``
(recipe, Set5 scores and sha256 in ``asid_fast/weights/*.json``)."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"


def weights_path(scale: int, variant: str = "asid") -> Path:
    """The shipped safetensors file for (scale, variant); FileNotFoundError if none ships."""
    path = WEIGHTS_DIR / f"{variant}_x{scale}.safetensors"
    if not path.is_file():
        shipped = sorted(p.stem for p in WEIGHTS_DIR.glob("*.safetensors"))
        raise FileNotFoundError(f"no shipped weights for {variant} x{scale} (shipped: "
                                f"{', '.join(shipped) or 'none'}); pass your own checkpoint")
    return path


def metadata(scale: int, variant: str = "asid") -> dict:
    """The record next to the weights: variant, scale, training recipe, Set5 PSNR/SSIM."""
    return json.loads(weights_path(scale, variant).with_suffix(".json").read_text())


def verified_path(scale: int, variant: str = "asid") -> Path:
    """:func:`weights_path`, after checking the file against the sha256 in its record;
    CheckpointError if they differ."""
    from .checkpoint import CheckpointError

    path = weights_path(scale, variant)
    want = metadata(scale, variant)["sha256"]
    got = hashlib.sha256(path.read_bytes()).hexdigest()
    if got != want:
        raise CheckpointError(f"{path} is damaged: its sha256 is {got[:16]}..., "
                              f"{path.with_suffix('.json').name} says {want[:16]}...; "
                              "reinstall asid_fast")
    return path


def pretrained(scale: int = 4, variant: str = "asid", backend: str = "auto"):
    """The fused ASID with the shipped weights, in eval mode. Inputs are RGB in [-1, 1]."""
    from .checkpoint import load_checkpoint
    from .model import ASID

    model = ASID(scale, variant, backend=backend)
    return load_checkpoint(model, verified_path(scale, variant)).eval()
