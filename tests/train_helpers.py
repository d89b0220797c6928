"""What the ``asid-fast train`` tests share: tiny options, tiny HR images, reading a run's log."""
import json

import numpy as np
import torch

from asid_fast.tools.imageio import Picture, write_image

TINY = dict(scale=2, patch=12, batch=2, repeat=4, workers=0, log_every=1, seed=3)


def smooth_image(rng, h, w):
    """A smooth random RGB image with some noise, (h, w, 3) uint8."""
    yy, xx = np.mgrid[0:h, 0:w]
    base = 128 + 60 * np.sin(xx / 5 + rng.uniform(0, 6)) * np.cos(yy / 7 + rng.uniform(0, 6))
    img = base[..., None] + rng.normal(0, 8, (h, w, 3)) + rng.uniform(-40, 40, 3)
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


def write_hr_folder(folder, sizes=((40, 36), (34, 44))):
    """Write one smooth PNG per (h, w) in ``sizes`` into ``folder``; returns ``folder``."""
    rng = np.random.default_rng(0)
    for i, (h, w) in enumerate(sizes):
        write_image(folder / f"img{i}.png", Picture(smooth_image(rng, h, w), None, "PNG"))
    return folder


def metrics(run):
    """The records of RUN/metrics.jsonl."""
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def losses(run):
    """The logged losses of a run, in order."""
    return [m["loss"] for m in metrics(run) if "loss" in m]


def assert_same_weights(a_path, b_path):
    """Two checkpoints at the same step with bit-identical model weights."""
    a = torch.load(a_path, weights_only=True)
    b = torch.load(b_path, weights_only=True)
    assert a["step"] == b["step"]
    for name, tensor in a["model"].items():
        assert torch.equal(tensor, b["model"][name]), name
