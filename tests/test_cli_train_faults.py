"""``asid-fast train`` under faults: damaged, old-format or foreign checkpoints, stray temp files,
non-finite training. Each refusal is one line naming the file; no work is lost."""
import struct
import zipfile

import pytest
import torch

from asid_fast.cli import main
from asid_fast.reference import ASID
from asid_fast.tools.train import train
from train_helpers import TINY, assert_same_weights, losses, metrics, write_hr_folder

# The top-level entries and config options of a last.pt written before checksums were stored
# (asid_fast 2422d4b); the old-format test rebuilds such a file from a new one.
OLD_KEYS = ["model", "optimizer", "scheduler", "scaler", "step", "rng", "config"]
CHECKSUM_KEY = "payload_sha256"  # the entry that new checkpoints add
OLD_OPTIONS = ["data", "scale", "variant", "patch", "batch", "lr", "betas", "weight_decay",
               "decay_epochs", "gamma", "epochs", "steps", "repeat", "amp", "workers",
               "save_every", "val", "val_every", "log_every", "seed", "init", "backend",
               "device", "cache"]


@pytest.fixture(scope="module")
def hr_dir(tmp_path_factory):
    return write_hr_folder(tmp_path_factory.mktemp("hr"))


def cli(capsys, *argv):
    """Run ``asid-fast`` with ``argv``; returns (exit status, stderr)."""
    code = main([str(a) for a in argv])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return code, err


def flip_tensor_bytes(path, n=32):
    """Invert ``n`` bytes in the middle of the largest tensor record of a torch.save file (the
    zip stays readable: torch.load does not check the CRCs)."""
    with zipfile.ZipFile(path) as z:
        info = max((i for i in z.infolist() if "/data/" in i.filename), key=lambda i: i.file_size)
    data = bytearray(path.read_bytes())
    name_len, extra_len = struct.unpack("<HH", data[info.header_offset + 26:info.header_offset + 30])
    start = info.header_offset + 30 + name_len + extra_len + info.file_size // 2
    data[start:start + n] = bytes(b ^ 0xFF for b in data[start:start + n])
    path.write_bytes(bytes(data))


@pytest.fixture(scope="module")
def reference_run(hr_dir, tmp_path_factory):
    """An uninterrupted 4-step run, saving every step."""
    run = tmp_path_factory.mktemp("ref") / "run"
    train(run, data=[hr_dir], steps=4, save_every=1, progress=False, **TINY)
    return run


def test_damaged_last_pt_is_refused_and_resume_falls_back_to_previous(tmp_path, hr_dir,
                                                                     reference_run, capsys):
    run = tmp_path / "run"
    train(run, data=[hr_dir], steps=3, save_every=1, progress=False, **TINY)
    assert torch.load(run / "previous.pt", weights_only=True)["step"] == 2
    flip_tensor_bytes(run / "last.pt")
    damaged = run / "last.pt"
    # loading the weights refuses it
    code, err = cli(capsys, "upscale", hr_dir / "img0.png", "-o", tmp_path / "o", "--scale", 2,
                    "--weights", run, "--device", "cpu")
    assert code == 1 and f"{damaged} is damaged: its contents do not match the checksum" in err, err
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())
    # resuming says so, keeps the damaged file aside and continues from previous.pt (step 2)
    code, err = cli(capsys, "train", "--resume", run, "--steps", 4)
    assert code == 0, err
    assert f"{damaged} is damaged" in err and f"moved it to {run / 'last.pt.damaged'}" in err
    assert f"resuming from {run / 'previous.pt'} (step 2)" in err
    assert (run / "last.pt.damaged").is_file()
    assert_same_weights(run / "last.pt", reference_run / "last.pt")
    assert [m["step"] for m in metrics(run)] == [1, 2, 3, 4]
    assert losses(run) == losses(reference_run)


def test_damaged_last_pt_without_previous_is_refused(tmp_path, hr_dir, capsys):
    run = tmp_path / "run"
    train(run, data=[hr_dir], steps=1, progress=False, **TINY)
    capsys.readouterr()  # the first run's output
    flip_tensor_bytes(run / "last.pt")
    before = (run / "last.pt").read_bytes()
    code, err = cli(capsys, "train", "--resume", run, "--steps", 3)
    assert code == 1 and err.count("\n") == 1, err
    assert f"{run / 'last.pt'} is damaged: its contents do not match the checksum" in err
    assert (run / "last.pt").read_bytes() == before  # left as it was


def test_missing_last_pt_resumes_from_previous(tmp_path, hr_dir, reference_run, capsys):
    """A run killed between moving last.pt to previous.pt and renaming the new one in."""
    run = tmp_path / "run"
    train(run, data=[hr_dir], steps=3, save_every=1, progress=False, **TINY)
    (run / "last.pt").unlink()
    code, err = cli(capsys, "train", "--resume", run, "--steps", 4)
    assert code == 0 and f"{run / 'last.pt'} is missing" in err and "(step 2)" in err, err
    assert_same_weights(run / "last.pt", reference_run / "last.pt")


def test_old_checkpoint_without_checksum_resumes_with_a_notice(tmp_path, hr_dir, reference_run,
                                                               capsys):
    run = tmp_path / "run"
    train(run, data=[hr_dir], steps=2, save_every=1, progress=False, **TINY)
    # rewrite the run as the old code left it: last.pt without a checksum and with the old
    # options only in its config, no previous.pt
    state = torch.load(run / "last.pt", weights_only=True)
    del state[CHECKSUM_KEY]
    assert list(state) == OLD_KEYS and set(OLD_OPTIONS) < set(state["config"])
    state["config"] = {k: state["config"][k] for k in OLD_OPTIONS}
    torch.save(state, run / "last.pt")
    (run / "previous.pt").unlink()
    code, err = cli(capsys, "train", "--resume", run, "--steps", 4)
    assert code == 0, err
    notice = f"note: {run / 'last.pt'} has no checksum (saved by an older asid-fast); using it unverified"
    assert notice in err and err.count("note:") == 1, err
    assert_same_weights(run / "last.pt", reference_run / "last.pt")
    assert losses(run) == losses(reference_run)
    new = torch.load(run / "last.pt", weights_only=True)
    assert CHECKSUM_KEY in new and new["config"]["world_size"] == 1  # new saves carry both
    assert new["config"]["compile"] is False  # an option added later: its default
    # and its weights load for inference, with the same notice
    torch.save(state, tmp_path / "old.pt")
    code, err = cli(capsys, "upscale", hr_dir / "img0.png", "-o", tmp_path / "o", "--scale", 2,
                    "--weights", tmp_path / "old.pt", "--device", "cpu", "--tile", 0)
    assert code == 0 and "has no checksum" in err, err


def test_resume_from_something_that_is_not_a_training_state(tmp_path, hr_dir, capsys):
    torch.manual_seed(0)
    weights = ASID(2).state_dict()
    run = tmp_path / "run"
    train(run, data=[hr_dir], steps=1, progress=False, **TINY)
    good = torch.load(run / "last.pt", weights_only=True)
    del good[CHECKSUM_KEY]
    x3 = {**good, "config": {**good["config"], "scale": 3}}
    cases = [
        (weights, "is not an asid-fast training state: it has no model, optimizer, scheduler, "
                  "scaler, step, rng, config; to start a new run from its weights, use "
                  "--out NEW_RUN --init"),
        ({"model": weights}, "it has no optimizer, scheduler, scaler, step, rng, config"),
        ({k: v for k, v in good.items() if k != "optimizer"}, "it has no optimizer;"),
        (x3, "(asid x3 by its config) does not match the model: 2 shape mismatches: up.0.weight"),
        ({**good, "config": {"scale": 2}}, "its training config has no data, variant"),
        ({**good, "optimizer": {"state": {}, "param_groups": []}},
         "its optimizer state does not fit this run"),
    ]
    for i, (state, message) in enumerate(cases):
        folder = tmp_path / f"r{i}"
        folder.mkdir()
        torch.save(state, folder / "last.pt")
        code, err = cli(capsys, "train", "--resume", folder)
        assert code == 1 and str(folder / "last.pt") in err and message in err, (i, err)
        assert err.count("\n") <= 2, err  # the no-checksum notice, then the error


def test_empty_checkpoint_gives_the_reason(tmp_path, hr_dir, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "last.pt").write_bytes(b"")
    code, err = cli(capsys, "train", "--resume", run)
    assert code == 1 and f"cannot read checkpoint {run / 'last.pt'}: the file is empty (0 bytes)" in err
    code, err = cli(capsys, "upscale", hr_dir / "img0.png", "-o", tmp_path / "o", "--weights", run)
    assert code == 1 and "the file is empty (0 bytes)" in err


def test_stray_temp_files_are_removed_on_start_and_resume(tmp_path, hr_dir, capsys):
    run = tmp_path / "run"
    run.mkdir()
    stray = run / ".last.pt.k1ll3d.tmp"
    stray.write_bytes(b"\0" * 4096)
    train(run, data=[hr_dir], steps=1, progress=False, **TINY)
    assert not stray.exists() and f"removed {stray}" in capsys.readouterr().err
    stray.write_bytes(b"\0" * 4096)
    (run / ".metrics.jsonl.x.tmp").write_text("{}")
    code, err = cli(capsys, "train", "--resume", run, "--steps", 2)
    assert code == 0 and not stray.exists() and not (run / ".metrics.jsonl.x.tmp").exists()
    assert sorted(p.name for p in run.iterdir()) == ["cache", "config.json", "last.pt",
                                                     "metrics.jsonl", "previous.pt"]


@pytest.mark.parametrize("poisoned,log_every,message", [
    (4, 1, "training stopped at step 4: the loss is nan; the last good checkpoint is {} (step 2)"),
    (3, 100, "training stopped at step 4: the mean loss of steps 1-4 is nan; the last good "
             "checkpoint is {} (step 2)"),
])
def test_nan_loss_stops_the_run_and_keeps_the_last_good_checkpoint(tmp_path, hr_dir, capsys,
                                                                   monkeypatch, poisoned,
                                                                   log_every, message):
    from asid_fast.tools.train import Trainer

    real_batch = Trainer._batch

    def batch(self, lr_u8, hr_u8):  # the batch of step ``poisoned`` holds a NaN pixel
        lr, hr = real_batch(self, lr_u8, hr_u8)
        if self.step + 1 == poisoned:
            lr[0, 0, 0, 0] = float("nan")
        return lr, hr

    monkeypatch.setattr(Trainer, "_batch", batch)
    run = tmp_path / "run"
    code, err = cli(capsys, "train", "--data", hr_dir, "--scale", 2, "--out", run, "--patch", 12,
                    "--batch", 2, "--workers", 0, "--log-every", log_every, "--save-every", 2,
                    "--steps", 8)
    assert code == 1 and message.format(run / "last.pt") in err, err
    state = torch.load(run / "last.pt", weights_only=True)
    assert state["step"] == 2
    assert all(torch.isfinite(v).all() for v in state["model"].values())
    logged = metrics(run) if (run / "metrics.jsonl").exists() else []
    assert [m["step"] for m in logged] == list(range(1, poisoned)) if log_every == 1 else not logged


def test_non_finite_weights_stop_the_run(tmp_path, hr_dir, capsys, monkeypatch):
    from asid_fast.tools.train import Trainer

    real_step = Trainer.train_step

    def step(self, lr, hr):  # the update of step 1 leaves an infinite weight, the loss finite
        loss = real_step(self, lr, hr)
        with torch.no_grad():
            self.model.output.bias[3] = float("inf")
        return loss

    monkeypatch.setattr(Trainer, "train_step", step)
    run = tmp_path / "run"
    code, err = cli(capsys, "train", "--data", hr_dir, "--scale", 2, "--out", run, "--patch", 12,
                    "--batch", 2, "--workers", 0, "--log-every", 1, "--steps", 3)
    assert code == 1, err
    assert ("training stopped at step 1: 1 weight tensors hold NaN or Inf (output.bias); "
            "no checkpoint was saved") in err, err
    assert not (run / "last.pt").exists()


def test_unusable_training_images_are_all_reported_before_training(tmp_path, capsys):
    data = write_hr_folder(tmp_path / "data", sizes=((40, 36), (34, 44), (30, 30), (20, 20)))
    truncated, junk = data / "img1.png", data / "img3.png"
    truncated.write_bytes(truncated.read_bytes()[:300])
    junk.write_text("not an image")
    run = tmp_path / "run"
    code, err = cli(capsys, "train", "--data", data, "--scale", 2, "--out", run, "--patch", 12,
                    "--batch", 2, "--workers", 0, "--steps", 2)
    assert code == 1, err
    assert ("2 of 4 training images cannot be used (fix or remove them; the others are cached): "
            f"cannot read image {truncated}: ") in err
    assert f"; cannot read image {junk}: " in err
    assert not (run / "last.pt").exists() and len(list((run / "cache" / "X2").glob("*.npy"))) == 4
    # without them the run starts, and says which images are too small for the patches
    truncated.unlink()
    junk.unlink()
    code, err = cli(capsys, "train", "--data", data, "--scale", 2, "--out", run, "--patch", 16,
                    "--batch", 2, "--workers", 0, "--steps", 1)
    assert code == 0 and "note: 1 of 2 training images are smaller than 16x16 LR patches" in err, err
