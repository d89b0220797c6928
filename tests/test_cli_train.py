"""``asid-fast train`` end to end on tiny data: logging, exact resume after a crash, a real kill,
--init, the DIV2K layout and bad inputs."""
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from asid_fast.checkpoint import CHECKSUM_KEY, with_checksum
from asid_fast.cli import main
from asid_fast.reference import ASID
from asid_fast.tools import data as data_mod
from asid_fast.tools.data import PatchStream, build_cache, find_sources
from asid_fast.tools.errors import UserError
from asid_fast.tools.evaluate import evaluate
from asid_fast.tools.imageio import Picture, write_image
from asid_fast.tools.train import train
from train_helpers import TINY, assert_same_weights, losses, metrics, write_hr_folder


@pytest.fixture(scope="module")
def hr_dir(tmp_path_factory):
    return write_hr_folder(tmp_path_factory.mktemp("hr"))


class Crash(BaseException):
    """Stands in for the process dying (not an Exception, so nothing catches it)."""


def test_crash_and_resume_continue_exactly(tmp_path, hr_dir, monkeypatch):
    steps, crash_step, every = 14, 11, 4
    full = tmp_path / "full"
    train(full, data=[hr_dir], steps=steps, save_every=every, progress=False, **TINY)

    crashed = tmp_path / "crashed"
    real_getitem = PatchStream.__getitem__

    def dying(self, i):
        if i >= (crash_step - 1) * TINY["batch"]:  # while loading the batch of step 11
            raise Crash
        return real_getitem(self, i)

    monkeypatch.setattr(PatchStream, "__getitem__", dying)
    with pytest.raises(Crash):
        train(crashed, data=[hr_dir], steps=steps, save_every=every, progress=False, **TINY)
    monkeypatch.setattr(PatchStream, "__getitem__", real_getitem)
    assert torch.load(crashed / "last.pt", weights_only=True)["step"] == 8
    assert [m["step"] for m in metrics(crashed)] == list(range(1, crash_step))

    train(resume=crashed, progress=False)
    a = torch.load(full / "last.pt", weights_only=True)
    b = torch.load(crashed / "last.pt", weights_only=True)
    assert a["step"] == b["step"] == steps
    assert [m["step"] for m in metrics(crashed)] == list(range(1, steps + 1))  # 9, 10 only once
    assert losses(crashed) == losses(full)
    for name, tensor in a["model"].items():
        assert torch.equal(tensor, b["model"][name]), name
    assert a["optimizer"]["state"].keys() == b["optimizer"]["state"].keys()
    # a run folder works as --weights
    assert np.isfinite(evaluate(hr_dir, 2, weights=full, tile=0, device="cpu", progress=False)["psnr"])
    # and training did something: the L1 loss on this fixed tiny set went down
    first, last = np.mean(losses(full)[:4]), np.mean(losses(full)[-4:])
    assert last < 0.7 * first, (first, last)


def test_compile_trains_the_same_steps_and_saves_plain_weights(tmp_path, hr_dir, monkeypatch):
    """--compile runs the step under torch.compile (here with Dynamo's "eager" backend: the graph
    capture without Inductor's minutes of code generation): the same losses and weights as the
    uncompiled run, bit for bit, a checkpoint without the compiled wrapper's key prefix, and a
    run that can continue without it."""
    real_compile, compiled = torch.compile, []

    def eager_compile(net):
        compiled.append(net)
        return real_compile(net, backend="eager")

    plain, run = tmp_path / "plain", tmp_path / "compiled"
    train(plain, data=[hr_dir], steps=4, save_every=2, progress=False, **TINY)
    monkeypatch.setattr(torch, "compile", eager_compile)
    train(run, data=[hr_dir], steps=2, save_every=2, compile=True, progress=False, **TINY)
    assert len(compiled) == 1
    assert json.loads((run / "config.json").read_text())["compile"] is True
    assert main(["train", "--resume", str(run), "--steps", "4", "--no-compile"]) == 0
    assert len(compiled) == 1
    assert losses(run) == losses(plain)
    a = torch.load(plain / "last.pt", weights_only=True)["model"]
    b = torch.load(run / "last.pt", weights_only=True)["model"]
    assert a.keys() == b.keys()
    for name, tensor in a.items():
        assert torch.equal(b[name], tensor), name


def test_resume_with_the_data_moved(tmp_path, hr_dir):
    """A run folder taken to another machine resumes with --data naming the same images at their
    new place, and continues exactly as if nothing had moved."""
    import shutil

    full, moved = tmp_path / "full", tmp_path / "moved"
    train(full, data=[hr_dir], steps=6, save_every=3, progress=False, **TINY)
    train(moved, data=[hr_dir], steps=3, save_every=3, progress=False, **TINY)
    new_place = shutil.copytree(hr_dir, tmp_path / "elsewhere")
    shutil.rmtree(moved / "cache")
    train(resume=moved, data=[new_place], steps=6, progress=False)
    assert losses(moved) == losses(full)
    assert json.loads((moved / "config.json").read_text())["data"] == [str(new_place.resolve())]


def test_resume_of_an_unfused_checkpoint_updates_fused(tmp_path, hr_dir):
    """Checkpoints from before the fused AdamW update say so in their optimizer state; a resumed
    run updates with the fused kernel all the same, so it continues exactly like a run that
    never stopped (the per-tensor loop differs in rounding)."""
    full, old = tmp_path / "full", tmp_path / "old"
    train(full, data=[hr_dir], steps=8, save_every=4, progress=False, **TINY)
    train(old, data=[hr_dir], steps=4, save_every=4, progress=False, **TINY)
    state = torch.load(old / "last.pt", weights_only=True)
    assert all(g["fused"] for g in state["optimizer"]["param_groups"])
    for g in state["optimizer"]["param_groups"]:
        g["fused"] = None
    del state[CHECKSUM_KEY]
    torch.save(with_checksum(state), old / "last.pt")
    train(resume=old, steps=8, progress=False)
    assert losses(old) == losses(full)
    assert_same_weights(full / "last.pt", old / "last.pt")


def test_kill_and_resume_from_the_command_line(tmp_path, hr_dir):
    run = tmp_path / "run"
    argv = [sys.executable, "-m", "asid_fast", "train", "--data", str(hr_dir), "--scale", "2",
            "--out", str(run), "--patch", "12", "--batch", "2", "--workers", "0",
            "--log-every", "1", "--save-every", "2", "--steps", "100000"]
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([os.getcwd(), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while time.time() < deadline and not (run / "last.pt").exists():
            time.sleep(0.2)
        time.sleep(1.0)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    saved = torch.load(run / "last.pt", weights_only=True)["step"]
    assert saved >= 2 and saved % 2 == 0
    assert main(["train", "--resume", str(run), "--steps", str(saved + 3)]) == 0
    assert torch.load(run / "last.pt", weights_only=True)["step"] == saved + 3
    assert [m["step"] for m in metrics(run)] == list(range(1, saved + 4))


def test_init_from_x2_body_into_x4(tmp_path, hr_dir):
    torch.manual_seed(1)
    x2 = ASID(2).state_dict()
    torch.save({"model": x2}, tmp_path / "x2.pt")  # a wrapped checkpoint, like our last.pt
    train(tmp_path / "x4", data=[hr_dir], init=str(tmp_path / "x2.pt"), steps=0, progress=False,
          **{**TINY, "scale": 4, "patch": 9})
    x4 = torch.load(tmp_path / "x4" / "last.pt", weights_only=True)["model"]
    for name, tensor in x4.items():
        if name.startswith("up.0."):
            assert tensor.shape != x2[name].shape
        else:
            assert torch.equal(tensor, x2[name]), name
    torch.save(ASID(2, "asid_d8").state_dict(), tmp_path / "d8.pt")
    with pytest.raises(UserError, match="does not match"):
        train(tmp_path / "bad", data=[hr_dir], init=str(tmp_path / "d8.pt"), steps=0, progress=False,
              **TINY)


def test_div2k_layout_uses_given_lr_and_patches_stay_aligned(tmp_path):
    root = tmp_path / "DIV2K"
    (root / "HR").mkdir(parents=True)
    (root / "LR_bicubic" / "X2").mkdir(parents=True)
    rng = np.random.default_rng(0)
    lr = rng.integers(0, 256, (15, 13, 3)).astype(np.uint8)
    hr = np.kron(lr, np.ones((2, 2, 1), np.uint8))  # every LR pixel is a 2x2 HR block
    write_image(root / "HR" / "0001.png", Picture(hr, None, "PNG"))
    write_image(root / "LR_bicubic" / "X2" / "0001x2.png", Picture(lr, None, "PNG"))
    sources = find_sources([root], 2)
    assert sources == [(root / "HR" / "0001.png", root / "LR_bicubic" / "X2" / "0001x2.png")]
    pairs = build_cache(sources, 2, tmp_path / "cache", progress=False)
    np.testing.assert_array_equal(np.load(pairs[0][1]), lr)
    stream = PatchStream(pairs, 2, 9, seed=0, repeat=3)
    for i in range(12):  # crops, flips and rotations keep LR and HR aligned; samples repeat
        lr_p, hr_p = stream[i]
        assert torch.equal(hr_p, lr_p.repeat_interleave(2, 1).repeat_interleave(2, 2))
        assert torch.equal(PatchStream(pairs, 2, 9, seed=0, repeat=3)[i][0], lr_p)
    write_image(root / "LR_bicubic" / "X2" / "0001x2.png", Picture(lr[:-1], None, "PNG"))
    with pytest.raises(UserError, match="scale mismatch"):
        build_cache(find_sources([root], 2), 2, tmp_path / "cache2", progress=False)


def test_bad_inputs(tmp_path, hr_dir, capsys):
    run = tmp_path / "run"
    train(run, data=[hr_dir], steps=1, progress=False, **TINY)
    capsys.readouterr()  # the first run's output
    base = ["train", "--data", str(hr_dir), "--scale", "2", "--workers", "0"]
    cases = [
        (base + ["--out", str(run)], "already holds a run"),
        (["train", "--resume", str(tmp_path / "none")], "nothing to resume"),
        (["train", "--resume", str(run), "--scale", "3"], "--scale cannot change"),
        (["train", "--data", str(tmp_path / "missing"), "--scale", "2", "--out", str(tmp_path / "r1")],
         "not found"),
        (base + ["--out", str(tmp_path / "r2"), "--patch", "64"], "large enough"),
        (base + ["--out", str(tmp_path / "r3"), "--amp", "bf16", "--device", "cpu"], "needs a CUDA device"),
        (base + ["--out", str(tmp_path / "r6"), "--backend", "cuda", "--device", "cpu"], "cannot run on cpu"),
        (base + ["--out", str(tmp_path / "r4"), "--patch", "4"], "at least 9"),
        (["train", "--scale", "2", "--out", str(tmp_path / "r5")], "--data is required"),
        (base + ["--out", "/proc/asid_fast_no_such_dir/run"],
         "cannot write /proc/asid_fast_no_such_dir/run/config.json: cannot create the folder"),
        (base + ["--out", str(hr_dir / "img0.png" / "run")], "img0.png is a file, not a folder"),
    ]
    for argv, message in cases:
        code = main(argv)
        err = capsys.readouterr().err
        assert code == 1 and message in err and err.count("\n") == 1, (argv, err)


def test_workers_give_the_same_batches(tmp_path, hr_dir):
    pairs = build_cache(find_sources([hr_dir], 2), 2, tmp_path / "cache", progress=False)
    stream = PatchStream(pairs, 2, 12, seed=5, repeat=2)
    loaders = [torch.utils.data.DataLoader(stream, batch_size=3, sampler=range(3, 12), num_workers=n)
               for n in (0, 2)]
    for (a_lr, a_hr), (b_lr, b_hr) in zip(*loaders):
        assert torch.equal(a_lr, b_lr) and torch.equal(a_hr, b_hr)
    assert data_mod.lr_shape(pairs[0][1])[2] == 3
