"""The weights that ship in the package (asid_fast/weights)."""
import hashlib
import json
import shutil

import pytest
import torch

import asid_fast
from asid_fast import shipped_weights
from asid_fast.checkpoint import read_state_dict
from asid_fast.reference import ASID as ReferenceASID
from asid_fast.tools.evaluate import evaluate

SHIPPED = sorted(shipped_weights.WEIGHTS_DIR.glob("*.safetensors"))


def test_something_ships():
    assert any(p.name == "asid_x2.safetensors" for p in SHIPPED)


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_loads_strictly_into_both_models_and_matches_metadata(path):
    meta = json.loads(path.with_suffix(".json").read_text())
    assert meta["file"] == path.name
    assert meta["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert path.stem == f"{meta['variant']}_x{meta['scale']}"
    sd = read_state_dict(path)
    ReferenceASID(meta["scale"], meta["variant"]).load_state_dict(sd, strict=True)
    fused = asid_fast.pretrained(meta["scale"], meta["variant"])
    assert not fused.training
    assert all(torch.equal(fused.state_dict()[k], v) for k, v in sd.items())
    # the recorded Set5 score must clear the quality bar it was shipped under
    margin = 1.5 if meta["scale"] == 2 else 1.0
    assert meta["set5"]["psnr"] - meta["set5_bicubic"]["psnr"] >= margin


def test_x2_beats_bicubic_on_a_set5_image(shared_dir, tmp_path):
    shutil.copy(shared_dir / "data/Set5/HR/bird.png", tmp_path / "bird.png")
    ours = evaluate(tmp_path, 2, progress=False)  # no weights: the shipped ones
    bicubic = evaluate(tmp_path, 2, bicubic=True, progress=False)
    assert ours["psnr"] - bicubic["psnr"] >= 1.5, (ours["psnr"], bicubic["psnr"])
