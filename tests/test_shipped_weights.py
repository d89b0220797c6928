"""The weights that ship in the package (asid_fast/weights)."""
import hashlib
import json
import shutil
from pathlib import Path

import pytest
import torch

import asid_fast
from asid_fast import shipped_weights
from asid_fast.checkpoint import read_state_dict
from asid_fast.reference import ASID as ReferenceASID
from asid_fast.tools.evaluate import evaluate

SHIPPED = sorted(shipped_weights.WEIGHTS_DIR.glob("*.safetensors"))


def test_every_scale_ships():
    assert [p.name for p in SHIPPED] == ["asid_x2.safetensors", "asid_x3.safetensors",
                                         "asid_x4.safetensors"]


def test_the_main_command_runs_offline_on_the_example(tmp_path, capsys):
    """README's main command, `asid-fast upscale IMAGE -o DIR` with no --scale or --weights: the
    shipped x4 weights, announced on stderr, on a crop of the shipped example image."""
    from asid_fast.cli import main
    from asid_fast.tools.imageio import Picture, read_image, write_image

    pic = read_image(Path(__file__).resolve().parents[1] / "examples" / "astronaut.png")
    crop = tmp_path / "crop.png"
    alpha = None if pic.alpha is None else pic.alpha[:24, :20]
    write_image(crop, Picture(pic.pixels[:24, :20], alpha, "PNG"))
    assert main(["upscale", str(crop), "-o", str(tmp_path / "out"), "--device", "cpu"]) == 0
    assert "asid_x4.safetensors" in capsys.readouterr().err
    assert read_image(tmp_path / "out" / "crop.png").pixels.shape[:2] == (96, 80)


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


def test_damaged_shipped_file_is_refused(tmp_path, monkeypatch, capsys):
    from asid_fast.checkpoint import CheckpointError
    from asid_fast.cli import main

    copy = tmp_path / "weights"
    shutil.copytree(shipped_weights.WEIGHTS_DIR, copy)
    data = bytearray((copy / "asid_x2.safetensors").read_bytes())
    data[-64:-32] = bytes(b ^ 0xFF for b in data[-64:-32])  # tensor bytes: the file still parses
    (copy / "asid_x2.safetensors").write_bytes(bytes(data))
    monkeypatch.setattr(shipped_weights, "WEIGHTS_DIR", copy)
    read_state_dict(copy / "asid_x2.safetensors")  # safetensors itself has no checksum
    recorded = json.loads((copy / "asid_x2.json").read_text())["sha256"]
    with pytest.raises(CheckpointError, match=r"asid_x2.safetensors is damaged: its sha256 is .*"
                                              rf"asid_x2.json says {recorded[:16]}"):
        asid_fast.pretrained(2)
    image = Path(__file__).resolve().parents[1] / "examples" / "astronaut.png"
    code = main(["upscale", str(image), "-o", str(tmp_path / "o"), "--scale", "2", "--device", "cpu"])
    err = capsys.readouterr().err
    assert code == 1 and "asid_x2.safetensors is damaged" in err and err.count("\n") == 1, err


def _recipes(record):
    """The recipe of these weights and of every stage before them (under ``init``)."""
    while record is not None:
        if "recipe" in record:
            yield record["recipe"]
        record = record.get("init")


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_recorded_training_commands_parse(path):
    """Every stage's recorded command is a valid `asid-fast train` command line that asks for
    the recorded steps, seed and learning-rate schedule."""
    import shlex

    from asid_fast.cli import build_parser

    parser = build_parser()
    for recipe in _recipes(json.loads(path.with_suffix(".json").read_text())):
        argv = shlex.split(recipe["command"])
        assert argv[:2] == ["asid-fast", "train"], recipe["command"]
        args = parser.parse_args(argv[1:])
        for key in ("steps", "seed", "lr", "decay_epochs", "gamma", "batch", "patch"):
            assert getattr(args, key) == recipe["config"][key], (key, recipe["command"])
