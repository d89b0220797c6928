"""``asid-fast train`` under torchrun: two CPU processes (gloo, one thread each) on tiny images
train as one process with the same global batch does; rank 0 alone writes; a killed rank ends
the job and leaves the last checkpoint intact; resuming works with either process count."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from asid_fast.tools.data import StepSampler
from asid_fast.tools.train import load_run, train
from train_helpers import losses, metrics, write_hr_folder

REPO = Path(__file__).resolve().parents[1]
OPTIONS = dict(scale=2, patch=12, batch=4, repeat=4, workers=0, log_every=1, seed=3)
ARGV = ["--scale", 2, "--patch", 12, "--batch", 4, "--repeat", 4, "--workers", 0,
        "--log-every", 1, "--seed", 3]
# Per tensor, max|a - b| / max|a| between a 2-process and a 1-process run. The two differ only
# in float32 summation order (each rank sums its half of the batch, then the halves are
# averaged), but AdamW scales every element's update to about lr whatever the gradient's size,
# so gradient components that nearly cancel (some layer-norm biases) carry that rounding noise
# into updates differing by up to ~1e-3 lr; such biases start at zero and are only a few lr in
# size after a few steps. Measured here: up to 1.5e-4 (2e-5 on the reference backend); a wrong
# split of the batch (a rank using other samples) gives 1 and more.
WEIGHT_TOLERANCE = 1e-3
LOSS_TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def hr_dir(tmp_path_factory):
    return write_hr_folder(tmp_path_factory.mktemp("hr"))


def torchrun(nproc, *argv, **popen):
    """``torchrun --standalone --nproc_per_node=nproc -m asid_fast train ARGV`` as a Popen."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
           f"--nproc_per_node={nproc}", "-m", "asid_fast", "train", *map(str, argv)]
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, **popen)


def finish(proc, timeout=300):
    """(exit status, stdout, stderr) of a torchrun Popen."""
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def max_relative_difference(a_path, b_path) -> float:
    """max over tensors of max|a - b| / max|a| between the weights of two checkpoints."""
    a = torch.load(a_path, weights_only=True)["model"]
    b = torch.load(b_path, weights_only=True)["model"]
    assert a.keys() == b.keys()
    return max(((a[k] - b[k]).abs().max() / a[k].abs().max()).item() for k in a)


def assert_same_run(one, two):
    """The runs in folders ``one`` and ``two`` logged the same losses and reached the same
    weights, up to float32 summation order."""
    for x, y in zip(losses(one), losses(two), strict=True):
        assert abs(x - y) <= LOSS_TOLERANCE * abs(x), (losses(one), losses(two))
    diff = max_relative_difference(one / "last.pt", two / "last.pt")
    assert diff <= WEIGHT_TOLERANCE, diff


def test_step_sampler_splits_each_global_batch_across_ranks():
    for world in (1, 2, 4):
        parts = [list(StepSampler(3, 6, 8, rank, world)) for rank in range(world)]
        assert all(len(p) == len(StepSampler(3, 6, 8, 0, world)) == 3 * 8 // world for p in parts)
        for t in range(3):  # step 3 + t: ranks take consecutive slices of indices 8(3+t)...
            per = 8 // world
            step = [i for p in parts for i in p[t * per:(t + 1) * per]]
            assert step == list(range(8 * (3 + t), 8 * (4 + t)))
    assert list(StepSampler(3, 6, 8)) == list(range(24, 48))


@pytest.mark.slow
def test_two_processes_train_as_one_and_only_rank_0_writes(tmp_path, hr_dir):
    one, two = tmp_path / "one", tmp_path / "two"
    train(one, data=[hr_dir], steps=4, save_every=2, progress=False, **OPTIONS)
    code, out, err = finish(torchrun(2, "--data", hr_dir, "--out", two, "--steps", 4,
                                     "--save-every", 2, *ARGV))
    assert code == 0, err
    assert_same_run(one, two)
    # one writer: each step logged once, the files of one run, one result line
    assert [m["step"] for m in metrics(two)] == [1, 2, 3, 4]
    assert {m["world_size"] for m in metrics(two)} == {2}
    assert sorted(p.name for p in two.iterdir()) == ["cache", "config.json", "last.pt",
                                                     "metrics.jsonl", "previous.pt"]
    assert torch.load(two / "last.pt", weights_only=True)["config"]["world_size"] == 2
    assert '"world_size": 2' in (two / "config.json").read_text()
    assert len(out.strip().splitlines()) == 1 and '"step": 4' in out


def _worker_with_rank(parent: int, rank: int) -> int | None:
    """The pid of a process below ``parent`` whose environment has RANK=rank, or None."""
    children = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            pid, rest = stat.read_text().split(" ", 1)
            children.setdefault(int(rest.rsplit(")", 1)[1].split()[1]), []).append(int(pid))
        except (OSError, ValueError, IndexError):
            continue
    todo = list(children.get(parent, []))
    while todo:
        pid = todo.pop()
        try:
            if f"RANK={rank}".encode() in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0"):
                return pid
        except OSError:
            continue
        todo += children.get(pid, [])
    return None


@pytest.mark.slow
def test_killed_rank_ends_the_job_and_resume_works_with_any_process_count(tmp_path, hr_dir):
    run = tmp_path / "run"
    job = torchrun(2, "--data", hr_dir, "--out", run, "--steps", 100000, "--save-every", 2, *ARGV)
    try:
        deadline = time.time() + 180
        while time.time() < deadline and not (run / "last.pt").exists():
            time.sleep(0.2)
        time.sleep(1.0)
        worker = _worker_with_rank(job.pid, 1)
        assert worker is not None
        os.kill(worker, signal.SIGKILL)
        code, _, err = finish(job, timeout=120)
    finally:
        job.kill()
    assert code != 0 and "FAILED" in err and "exitcode  : -9" in err, err
    state, _ = load_run(run)  # intact: verified against its checksum
    saved = state["step"]
    assert saved >= 2 and saved % 2 == 0
    # resume under torchrun with 2 processes, then with 1 (no torchrun)
    code, _, err = finish(torchrun(2, "--resume", run, "--steps", saved + 2))
    assert code == 0, err
    assert torch.load(run / "last.pt", weights_only=True)["step"] == saved + 2
    train(resume=run, steps=saved + 3, progress=False)
    assert [m["step"] for m in metrics(run)] == list(range(1, saved + 4))
    assert [m["world_size"] for m in metrics(run)][-3:] == [2, 2, 1]
    # The same steps with the same process counts, uninterrupted: resuming continues bit for bit.
    # (Against a 1-process run the weights would drift apart in float32 summation order, more
    # the longer the job ran before the kill; the first test checks that equivalence.)
    reference = tmp_path / "reference"
    code, _, err = finish(torchrun(2, "--data", hr_dir, "--out", reference, "--steps", saved + 2,
                                   "--save-every", 2, *ARGV))
    assert code == 0, err
    train(resume=reference, steps=saved + 3, progress=False)
    assert losses(reference) == losses(run)
    assert max_relative_difference(reference / "last.pt", run / "last.pt") == 0


@pytest.mark.slow
def test_batch_that_does_not_split_evenly_is_refused(tmp_path, hr_dir):
    code, _, err = finish(torchrun(2, "--data", hr_dir, "--out", tmp_path / "run", "--steps", 2,
                                   *ARGV, "--batch", 3))  # the last --batch counts
    message = ("asid-fast train: error: --batch 3 does not split evenly across 2 processes: "
               "give a multiple of 2 (--batch is the global batch)")
    assert code != 0 and err.count(message) == 1, err
    assert not (tmp_path / "run" / "last.pt").exists()
