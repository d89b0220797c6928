"""``asid-fast eval``: the bicubic Set5 numbers of ASID_SPEC.md, the model path, bad inputs."""
import json

import numpy as np
import pytest
import torch

from asid_fast.cli import main
from asid_fast.reference import ASID
from asid_fast.tools.evaluate import crop_to_multiple, evaluate
from asid_fast.tools.imageio import read_rgb8
from asid_fast.tools.imageio import Picture, write_image
from asid_fast.tools.imresize import imresize

# ASID_SPEC.md, "Evaluation conventions": bicubic upscaling of MATLAB-bicubic LR Set5, RGB
SET5_BICUBIC = {2: (33.673, 0.9303), 3: (30.403, 0.8689), 4: (28.429, 0.8111)}


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_set5_bicubic_reproduces_the_published_numbers(shared_dir, scale):
    result = evaluate(shared_dir / "data/Set5/HR", scale, bicubic=True, progress=False)
    want_psnr, want_ssim = SET5_BICUBIC[scale]
    assert abs(result["psnr"] - want_psnr) < 0.005
    assert abs(result["ssim"] - want_ssim) < 0.0005
    assert sorted(result["images"]) == ["baby", "bird", "butterfly", "head", "woman"]


def _hr_folder(tmp_path, sizes=((26, 31), (24, 24))):
    folder = tmp_path / "HR"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i, (h, w) in enumerate(sizes):
        img = rng.integers(0, 256, (h, w, 3)).astype(np.uint8)
        write_image(folder / f"im{i}.png", Picture(img, None, "PNG"))
    return folder


def test_cli_table_and_json(tmp_path, capsys):
    hr = _hr_folder(tmp_path)
    out = tmp_path / "r.json"
    assert main(["eval", "--hr", str(hr), "--scale", "2", "--bicubic", "--json", str(out)]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == ["image", "PSNR", "SSIM"]
    assert [row.split()[0] for row in table[1:]] == ["im0", "im1", "mean"]
    data = json.loads(out.read_text())
    assert set(data) == {"psnr", "ssim", "images"} and set(data["images"]) == {"im0", "im1"}
    assert data["psnr"] == pytest.approx(np.mean([v["psnr"] for v in data["images"].values()]))
    assert float(table[-1].split()[1]) == pytest.approx(data["psnr"], abs=1e-4)


def test_unwritable_json_is_refused_before_measuring(tmp_path, capsys, monkeypatch):
    from asid_fast.tools import evaluate as evaluate_mod

    hr = _hr_folder(tmp_path)

    def no_scoring(*args, **kwargs):
        raise AssertionError("measured before the --json place was checked")

    monkeypatch.setattr(evaluate_mod, "score", no_scoring)
    for path, message in [("/proc/asid_fast_no_such_dir/r.json", "cannot create the folder"),
                          (f"{hr / 'im0.png'}/r.json", "is a file, not a folder")]:
        code = main(["eval", "--hr", str(hr), "--scale", "2", "--bicubic", "--json", path])
        err = capsys.readouterr().err
        assert code == 1 and f"cannot write {path}: " in err and message in err, err
        assert len(err.splitlines()) == 1, err


def test_model_path_and_lr_folder(tmp_path):
    hr = _hr_folder(tmp_path)
    ckpt = tmp_path / "w.pt"
    torch.manual_seed(0)
    torch.save(ASID(2).state_dict(), ckpt)
    made = evaluate(hr, 2, weights=ckpt, tile=0, device="cpu", progress=False)
    # an --lr folder holding the same bicubic LR (DIV2K-style names) gives the same numbers
    lr = tmp_path / "LR"
    lr.mkdir()
    for f in sorted(hr.iterdir()):
        small = imresize(crop_to_multiple(read_rgb8(f), 2), 0.5)
        write_image(lr / f"{f.stem}x2.png", Picture(small, None, "PNG"))
    given = evaluate(hr, 2, weights=ckpt, lr=lr, tile=0, device="cpu", progress=False)
    assert given == made
    assert 0 < made["ssim"] < 1 and np.isfinite(made["psnr"])


def test_bad_inputs(tmp_path, capsys):
    hr = _hr_folder(tmp_path)
    wrong = tmp_path / "LRwrong"
    wrong.mkdir()
    for name in ("im0", "im1"):
        write_image(wrong / f"{name}.png", Picture(np.zeros((5, 5, 3), np.uint8), None, "PNG"))
    x3 = tmp_path / "x3.pt"
    torch.save(ASID(3).state_dict(), x3)
    cases = [
        (["--hr", str(tmp_path / "nope"), "--bicubic"], "HR folder not found"),
        (["--hr", str(hr), "--bicubic", "--lr", str(wrong)], "scale mismatch"),
        (["--hr", str(hr), "--bicubic", "--lr", str(tmp_path)], "no LR image"),
        (["--hr", str(hr), "--weights", str(x3), "--device", "cpu"], "ASID x3"),
        (["--hr", str(tmp_path / "LRwrong"), "--bicubic", "--scale", "4"], "too small to measure"),
    ]
    for argv, message in cases:
        code = main(["eval", "--scale", "2", *argv])
        err = capsys.readouterr().err
        assert code == 1 and message in err and "Traceback" not in err, (argv, err)
    with pytest.raises(SystemExit) as exc:  # --weights and --bicubic exclude each other
        main(["eval", "--hr", str(hr), "--scale", "2", "--bicubic", "--weights", str(x3)])
    assert exc.value.code == 2


def test_too_small_lr_names_the_file_before_the_model_loads(tmp_path, capsys, monkeypatch):
    from asid_fast.tools import runtime

    def no_model(*args, **kwargs):
        raise AssertionError("the model was prepared before the images were checked")

    monkeypatch.setattr(runtime, "prepare_model", no_model)
    hr = _hr_folder(tmp_path, sizes=((20, 21), (24, 24)))  # measurable at x4, LR 5x5 and 6x6
    lr = tmp_path / "LR"
    lr.mkdir()
    for f in sorted(hr.iterdir()):
        small = imresize(crop_to_multiple(read_rgb8(f), 4), 0.25)
        write_image(lr / f.name, Picture(small, None, "PNG"))
    for argv, message in [([], f"the x4 LR of {hr / 'im0.png'} is 5x5; ASID needs at least 9x9 pixels"),
                          (["--lr", str(lr)], f"{lr / 'im0.png'} is 5x5; ASID needs at least 9x9")]:
        code = main(["eval", "--hr", str(hr), "--scale", "4", "--device", "cpu", *argv])
        err = capsys.readouterr().err
        assert code == 1 and message in err and err.count("\n") == 1, err
    assert evaluate(hr, 4, bicubic=True, progress=False)["psnr"] > 0  # bicubic needs no minimum
