"""``asid-fast train``: train ASID on HR images with resumable, atomic checkpoints.

A run folder holds ``last.pt`` (model, optimizer, scheduler, grad scaler, step, RNG states,
config and a checksum of all of these), ``previous.pt`` (the checkpoint before it, used when
``last.pt`` is missing or damaged), ``config.json`` and ``metrics.jsonl`` (one JSON object per
log or validation event). Because the data stream is a pure function of (seed, sample index)
(see :mod:`.data`), a resumed run continues exactly where the last checkpoint left off.

Under torchrun the run is data-parallel (DistributedDataParallel): ``--batch`` is the global
batch, split evenly across the processes, each step's samples are the ones a single process
would use, so the updates do not depend on the process count (up to float32 summation order).
Rank 0 alone reads and writes the run folder; the config and log record ``world_size``.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch
from tqdm import tqdm

from . import distributed, runtime
from .atomic import atomic_path, check_writable, write_text
from .data import PatchStream, StepSampler, build_cache, find_sources
from .distributed import Ranks
from .errors import UserError

DEFAULTS = {
    "data": None, "scale": None, "variant": "asid", "patch": 64, "batch": 16, "lr": 5e-4,
    "betas": [0.9, 0.999], "weight_decay": 1e-4, "decay_epochs": 250, "gamma": 0.5,
    "epochs": 1000, "steps": None, "repeat": 64, "amp": "none", "workers": 4,
    "save_every": 1000, "val": None, "val_every": 1000, "log_every": 100, "seed": 0,
    "init": None, "backend": "auto", "device": "auto", "cache": None, "compile": False,
}
# options that may change when resuming; the rest define the run ("data" may name the same
# image folders at a new place, e.g. a run folder moved to another machine: the data stream is a
# function of the seed, the sample index and the sorted image list)
RESUMABLE = {"data", "epochs", "steps", "workers", "save_every", "val", "val_every", "log_every",
             "backend", "device", "compile"}
# options added after runs were first saved: a run whose config lacks one resumes with its
# default, the behaviour it was started with
LATER = ("compile",)
AMP = {"none": None, "bf16": torch.bfloat16, "fp16": torch.float16}
CHECKPOINT = "last.pt"
PREVIOUS = "previous.pt"
DAMAGED = "last.pt.damaged"  # a damaged last.pt is moved here when resuming from previous.pt
CONFIG = "config.json"
METRICS = "metrics.jsonl"


def make_config(options: dict, stored: dict | None = None) -> dict:
    """Defaults + ``options`` for a new run, or ``stored`` + the resumable ``options``."""
    unknown = set(options) - set(DEFAULTS)
    if unknown:
        raise TypeError(f"unknown training options: {sorted(unknown)}")
    given = {k: v for k, v in options.items() if v is not None}
    if "data" in given:
        given["data"] = [str(Path(d).resolve()) for d in given["data"]]
    if "betas" in given:
        given["betas"] = [float(b) for b in given["betas"]]
    if stored is None:
        config = {**DEFAULTS, **given}
        if not config["data"]:
            raise UserError("--data is required for a new run")
        if config["scale"] is None:
            raise UserError("--scale is required for a new run")
        return config
    for key, value in given.items():
        if key not in RESUMABLE and value != stored.get(key):
            raise UserError(f"--{key.replace('_', '-')} cannot change when resuming "
                            f"(run has {stored.get(key)!r}, got {value!r})")
    return {**{k: DEFAULTS[k] for k in LATER}, **stored,
            **{k: v for k, v in given.items() if k in RESUMABLE}}


def check_config(c: dict) -> None:
    from ..reference.model import MIN_SIZE

    positive = ("patch", "batch", "repeat", "save_every", "val_every", "log_every")
    for key in positive:
        if not c[key] >= 1:
            raise UserError(f"--{key.replace('_', '-')} must be >= 1, got {c[key]}")
    if c["patch"] < MIN_SIZE:
        raise UserError(f"--patch must be at least {MIN_SIZE}, got {c['patch']}")
    if c["steps"] is None and c["epochs"] < 1:
        raise UserError(f"--epochs must be >= 1, got {c['epochs']}")
    if c["steps"] is not None and c["steps"] < 0:
        raise UserError(f"--steps must be >= 0, got {c['steps']}")
    if c["workers"] < 0 or c["decay_epochs"] < 0 or c["lr"] <= 0:
        raise UserError("--workers and --decay-epochs must be >= 0 and --lr > 0")
    if c["amp"] not in AMP:
        raise UserError(f"--amp must be one of {sorted(AMP)}, got {c['amp']!r}")
    world = c["world_size"]
    if c["batch"] % world:
        raise UserError(f"--batch {c['batch']} does not split evenly across {world} processes: "
                        f"give a multiple of {world} (--batch is the global batch)")


def init_from(model: torch.nn.Module, path) -> list[str]:
    """Load ``path`` into ``model`` except ``up.0`` tensors whose shapes differ (e.g. an x2 body
    into an x4 model). Returns the names left at their initial values."""
    from ..checkpoint import CheckpointError, check_state_dict, read_state_dict

    path = runtime.checkpoint_file(path)
    try:
        sd = read_state_dict(path)
        own = model.state_dict()
        skipped = [k for k, v in sd.items()
                   if k.startswith("up.0.") and k in own and v.shape != own[k].shape]
        merged = {**sd, **{k: own[k] for k in skipped}}
        check_state_dict(model, merged, source=str(path))
    except CheckpointError as e:
        raise UserError(str(e)) from None
    model.load_state_dict(merged)
    return skipped


def save_checkpoint(run: Path, state: dict) -> None:
    """Write ``state`` and its checksum to RUN/last.pt atomically; the last.pt it replaces
    becomes previous.pt."""
    from ..checkpoint import with_checksum

    with atomic_path(run / CHECKPOINT, keep=run / PREVIOUS) as tmp:
        torch.save(with_checksum(state), tmp)


def read_training_state(path: Path) -> dict:
    """The verified ``asid-fast train`` state in ``path``; CheckpointError saying what is
    missing when the file holds something else (e.g. weights only)."""
    from ..checkpoint import CheckpointError, TRAINING_KEYS, load_verified

    state = load_verified(path)
    missing = [k for k in TRAINING_KEYS if not isinstance(state, dict) or k not in state]
    if missing:
        raise CheckpointError(f"{path} is not an asid-fast training state: it has no "
                              f"{', '.join(missing)}; to start a new run from its weights, use "
                              f"--out NEW_RUN --init {path}")
    # every option is stored in a run's config (make_config), but those added later
    lacking = [k for k in DEFAULTS if k not in LATER
               and (not isinstance(state["config"], dict) or k not in state["config"])]
    if lacking:
        raise CheckpointError(f"{path}: its training config has no {', '.join(lacking)}")
    return state


def load_run(run: Path) -> tuple[dict, Path]:
    """(training state, its file) to resume ``run`` from: last.pt, or previous.pt when last.pt
    is missing or damaged, saying so (a damaged last.pt is moved to last.pt.damaged)."""
    from ..checkpoint import CheckpointError, DamagedCheckpoint

    last, previous = run / CHECKPOINT, run / PREVIOUS
    if not (last.is_file() or previous.is_file()):
        raise UserError(f"nothing to resume: {last} not found")
    why = None  # why previous.pt is used
    try:
        if last.is_file():
            try:
                return read_training_state(last), last
            except DamagedCheckpoint as e:
                if not previous.is_file():
                    raise
                why = str(e)
        else:
            why = f"{last} is missing (the run stopped while saving)"
        state = read_training_state(previous)
    except CheckpointError as e:
        raise UserError(f"{why}; {e}" if why else str(e)) from None
    if last.is_file():
        os.replace(last, run / DAMAGED)
        why += f"; moved it to {run / DAMAGED}"
    print(f"note: {why}; resuming from {previous} (step {state['step']})", file=sys.stderr)
    return state, previous


def remove_stale_temps(run: Path) -> None:
    """Delete the temp files that a run killed while writing leaves in ``run``, saying so."""
    for name in (CHECKPOINT, CONFIG, METRICS):
        for tmp in run.glob(f".{name}.*.tmp"):
            tmp.unlink()
            print(f"note: removed {tmp}, left by a run stopped while writing", file=sys.stderr)


def trim_metrics(path: Path, step: int) -> None:
    """Keep the metric lines up to ``step`` (a killed run may have logged past its checkpoint)."""
    if not path.is_file():
        return
    kept = []
    for line in path.read_text().splitlines():
        try:
            if json.loads(line)["step"] <= step:
                kept.append(line)
        except (ValueError, KeyError, TypeError):
            continue  # a line cut short by the kill
    write_text(path, "".join(k + "\n" for k in kept))


class Trainer:
    """One training run, or this process's part of a data-parallel one; see :func:`train`.
    ``state`` (read from the file ``source``) resumes one. Makes no collective call before
    :meth:`fit`."""

    def __init__(self, run: Path, config: dict, state: dict | None, progress: bool,
                 source: Path | None = None, ranks: Ranks = Ranks()):
        c = self.config = config
        self.run, self.ranks = run, ranks
        self.progress = progress and ranks.main
        self.device = runtime.resolve_device(c["device"])
        if ranks.distributed and self.device.type == "cuda":
            self.device = distributed.local_cuda(self.device, ranks)
        self.amp = AMP[c["amp"]]
        if self.amp is not None and self.device.type != "cuda":
            raise UserError(f"--amp {c['amp']} needs a CUDA device; use --amp none on {self.device.type}")
        runtime.check_backend(c["backend"], self.device)
        torch.manual_seed(c["seed"])
        self.model = runtime.build_model(c["scale"], c["variant"], c["backend"]).to(self.device)
        if state is not None:
            self._load_model(state["model"], source)
        elif c["init"]:
            skipped = init_from(self.model, c["init"])
            if skipped and ranks.main:
                print(f"init: kept fresh {', '.join(skipped)} (shape differs in {c['init']})")
        sources = find_sources(c["data"], c["scale"])
        pairs = build_cache(sources, c["scale"], c["cache"] or run / "cache", self.progress)
        self.stream = PatchStream(pairs, c["scale"], c["patch"], c["seed"], c["repeat"])
        if self.stream.skipped and ranks.main:
            print(f"note: {self.stream.skipped} of {len(pairs)} training images are smaller than "
                  f"{c['patch']}x{c['patch']} LR patches and are left out", file=sys.stderr)
        self.steps_per_epoch = max(1, self.stream.epoch_size // c["batch"])
        self.total = c["steps"] if c["steps"] is not None else c["epochs"] * self.steps_per_epoch
        # fused: one kernel for all parameters (torch has it for CPU and CUDA tensors)
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=c["lr"], betas=tuple(c["betas"]),
                                     weight_decay=c["weight_decay"],
                                     fused=True if self.device.type in ("cpu", "cuda") else None)
        decay = c["decay_epochs"] * self.steps_per_epoch
        self.sched = torch.optim.lr_scheduler.StepLR(self.opt, step_size=max(decay, 1),
                                                     gamma=c["gamma"] if decay else 1.0)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp is torch.float16)
        self.step, self.saved_step = 0, None
        if state is not None:
            self._restore(state, source)
            self.saved_step = self.step
        self.val_pairs = None
        if c["val"] and ranks.main:
            from .evaluate import load_pairs

            self.val_pairs = load_pairs(c["val"], c["scale"])
        self.net = self.model  # what trains: wrapped in DistributedDataParallel by fit

    def _load_model(self, sd: dict, source: Path) -> None:
        """Load the resumed weights, refused clearly if they do not fit the run's model."""
        from ..checkpoint import CheckpointError, check_state_dict

        c = self.config
        try:
            check_state_dict(self.model, sd, source=f"{source} ({c['variant']} x{c['scale']} "
                                                    "by its config)")
        except CheckpointError as e:
            raise UserError(str(e)) from None
        self.model.load_state_dict(sd)

    def _restore(self, state: dict, source: Path) -> None:
        """Optimizer, scheduler, grad scaler, step and RNG states of a resumed run."""
        for name, part in (("optimizer", self.opt), ("scheduler", self.sched),
                           ("scaler", self.scaler)):
            try:
                part.load_state_dict(self._this_runs_update(state[name]) if part is self.opt
                                     else state[name])
            except (ValueError, KeyError, TypeError, RuntimeError) as e:
                raise UserError(f"{source}: its {name} state does not fit this run: {e}") from None
        self.step = state["step"]
        torch.set_rng_state(state["rng"]["torch"])
        # one state per visible GPU: restorable only with the same count (training draws no
        # CUDA random numbers, so a run moved to another machine loses nothing)
        cuda = state["rng"]["cuda"]
        if self.device.type == "cuda" and len(cuda) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda)

    def _this_runs_update(self, saved: dict) -> dict:
        """A saved optimizer state with this run's choice of update kernel (fused, foreach):
        torch's load_state_dict would keep the saving run's, e.g. the per-tensor loop of
        checkpoints from before the fused update. The updates agree up to rounding."""
        own = self.opt.param_groups[0]
        return {**saved, "param_groups": [{**g, "fused": own["fused"], "foreach": own["foreach"]}
                                          for g in saved["param_groups"]]}

    def state(self) -> dict:
        """Everything a resumed run needs (see the module docstring)."""
        cuda = torch.cuda.get_rng_state_all() if self.device.type == "cuda" else []
        return {"model": self.model.state_dict(), "optimizer": self.opt.state_dict(),
                "scheduler": self.sched.state_dict(), "scaler": self.scaler.state_dict(),
                "step": self.step, "rng": {"torch": torch.get_rng_state(), "cuda": cuda},
                "config": self.config}

    def save(self):
        """Rank 0 writes the checkpoint; every rank waits for it."""
        if self.ranks.main:
            save_checkpoint(self.run, self.state())
        distributed.barrier()
        self.saved_step = self.step

    def loader(self):
        """This process's share of the batches of the remaining steps."""
        b, world = self.config["batch"], self.ranks.world_size
        sampler = StepSampler(self.step, self.total, b, self.ranks.rank, world)
        return torch.utils.data.DataLoader(
            self.stream, batch_size=b // world, sampler=sampler,
            num_workers=self.config["workers"], pin_memory=self.device.type == "cuda")

    def _batch(self, lr_u8, hr_u8):
        lr = runtime.to_model(lr_u8.to(self.device, non_blocking=True).float() / 255)
        hr = runtime.to_model(hr_u8.to(self.device, non_blocking=True).float() / 255)
        return lr, hr

    def train_step(self, lr, hr) -> torch.Tensor:
        self.opt.zero_grad(set_to_none=True)
        with torch.autocast(self.device.type, dtype=self.amp, enabled=self.amp is not None):
            sr = self.net(lr)
        loss = torch.nn.functional.l1_loss(sr.float(), hr)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.opt)
        self.scaler.update()
        self.sched.step()
        return loss.detach()

    def validate(self) -> float:
        from .evaluate import model_sr, score
        from .upscale import model_fn

        self.model.eval()
        sr = model_sr(model_fn(self.model, torch.float32), self.config["scale"], self.device, tile=0)
        result = score(self.val_pairs, sr, self.config["scale"], with_ssim=False, progress=False)
        self.model.train()
        return result["psnr"]

    def check_finite(self, loss_sum: torch.Tensor, n: int) -> None:
        """UserError if the summed loss of the last ``n`` steps or a weight is NaN/Inf, naming
        the step and the last good checkpoint. One host sync: called at logs and saves only,
        with the loss averaged over the ranks (the weights are the same on all), so that every
        rank stops together; rank 0 shows the message."""
        named = list(self.model.named_parameters())
        finite = torch.stack([torch.isfinite(loss_sum)] + [torch.isfinite(p).all() for _, p in named])
        if finite.all().item():
            return
        if not finite[0]:
            what = (f"the loss is {loss_sum.item() / n}" if n == 1 else
                    f"the mean loss of steps {self.step - n + 1}-{self.step} is {loss_sum.item() / n}")
        else:
            bad = [name for (name, _), ok in zip(named, finite[1:].tolist()) if not ok]
            shown = ", ".join(bad[:3]) + (f" and {len(bad) - 3} more" if len(bad) > 3 else "")
            what = f"{len(bad)} weight tensors hold NaN or Inf ({shown})"
        kept = (f"the last good checkpoint is {self.run / CHECKPOINT} (step {self.saved_step})"
                if self.saved_step is not None else "no checkpoint was saved")
        error = UserError(f"training stopped at step {self.step}: {what}; {kept}")
        error.quiet = not self.ranks.main
        raise error

    def log(self, record: dict) -> None:
        with open(self.run / METRICS, "a") as f:
            f.write(json.dumps(record) + "\n")

    def fit(self) -> dict:
        """Train up to the last step, logging, validating and saving on schedule; returns the
        last log record."""
        c = self.config
        main = self.ranks.main
        if main:
            runtime.announce_backend(c["backend"], self.device, torch.float32)
        self.net = distributed.wrap(self.model, self.device)
        if c["compile"]:  # compiled on the first step; checkpoints hold self.model's state
            self.net = torch.compile(self.net)
        self.model.train()
        loss_sum, n, t0 = torch.zeros((), device=self.device), 0, time.perf_counter()
        last = {"step": self.step}
        with tqdm(total=self.total, initial=self.step, desc="train", unit="step",
                  disable=not self.progress) as bar:
            for lr_u8, hr_u8 in self.loader():
                loss_sum += self.train_step(*self._batch(lr_u8, hr_u8))
                self.step += 1
                n += 1
                bar.update(1)
                at_log = self.step % c["log_every"] == 0 or self.step == self.total
                if at_log or self.step % c["save_every"] == 0:
                    loss_sum = distributed.mean(loss_sum)
                    self.check_finite(loss_sum, n)
                if at_log:
                    elapsed = time.perf_counter() - t0
                    last = {"step": self.step, "epoch": self.step / self.steps_per_epoch,
                            "loss": loss_sum.item() / n, "lr": self.sched.get_last_lr()[0],
                            "it_s": n / elapsed, "world_size": self.ranks.world_size}
                    if main:
                        self.log(last)
                    bar.set_postfix(loss=f"{last['loss']:.4f}", lr=f"{last['lr']:.2e}")
                    loss_sum.zero_()
                    n, t0 = 0, time.perf_counter()
                if c["val"] and (self.step % c["val_every"] == 0 or self.step == self.total):
                    if main:
                        last["val_psnr"] = self.validate()
                        self.log({"step": self.step, "val_psnr": last["val_psnr"]})
                    distributed.barrier()
                if self.step % c["save_every"] == 0:
                    self.save()
        if self.saved_step != self.step:
            self.save()
        return last


def prepare(out, resume, options: dict, world_size: int):
    """Set up the run folder for a new run in ``out`` or for continuing ``resume``: config
    made and checked (``world_size`` recorded), the folder tried for writing, stale temp files
    removed, config.json written, the log trimmed to the checkpoint. Returns (run, config,
    state to resume or None, its file or None)."""
    if resume is not None:
        run = Path(resume)
        if out is not None and Path(out).resolve() != run.resolve():
            raise UserError("--out and --resume name different runs; give only --resume RUN")
        state, source = load_run(run)
        config = make_config(options, state["config"])
    else:
        if out is None:
            raise UserError("give --out RUN for a new run (or --resume RUN)")
        run, state, source = Path(out), None, None
        if (run / CHECKPOINT).exists() or (run / PREVIOUS).exists():
            raise UserError(f"{run} already holds a run; continue it with --resume {run} "
                            "or choose another --out")
        config = make_config(options)
    config["world_size"] = world_size
    check_config(config)
    check_writable([run / CONFIG])  # creates the run folder
    remove_stale_temps(run)
    write_text(run / CONFIG, json.dumps(config, indent=2) + "\n")
    trim_metrics(run / METRICS, state["step"] if state is not None else 0)
    return run, config, state, source


def train(out=None, resume=None, progress=True, **options) -> dict:
    """Train a new run in ``out`` or continue the run folder ``resume``; data-parallel when
    launched by torchrun (see the module docstring).

    ``options`` are the keys of :data:`DEFAULTS` (e.g. data=[folder], scale=2, steps=1000).
    Returns the last logged metrics ({"step", "loss", "lr", ...}).
    """
    with distributed.session() as ranks:
        run, config, state, source = distributed.main_only(prepare, out, resume, options,
                                                           ranks.world_size)
        trainer = distributed.main_first(Trainer, run, config, state, progress, source, ranks)
        return trainer.fit()


def add_parser(subparsers):
    p = subparsers.add_parser(
        "train", help="train ASID on HR images",
        description="Train ASID. Defaults follow the authors: 64px LR patches, batch 16, AdamW "
                    "(5e-4, betas 0.9/0.999, weight decay 1e-4), L1 loss, lr halved every 250 "
                    "epochs, 1000 epochs of 64 patches per image.")
    p.add_argument("--data", action="append", metavar="DIR",
                   help="HR image folder or DIV2K-layout folder (repeatable)")
    p.add_argument("--scale", type=int, choices=(2, 3, 4))
    p.add_argument("--out", metavar="RUN", help="run folder for a new run")
    p.add_argument("--resume", metavar="RUN", help="continue the run in this folder")
    p.add_argument("--variant", choices=("asid", "asid_d8"))
    p.add_argument("--init", metavar="W",
                   help="start from these weights (up.0 may differ in shape: x2 body -> x4)")
    p.add_argument("--patch", type=int, help="LR patch side (default 64)")
    p.add_argument("--batch", type=int,
                   help="patches per step, over all processes under torchrun (default 16)")
    p.add_argument("--lr", type=float, help="learning rate (default 5e-4)")
    p.add_argument("--betas", type=float, nargs=2, help="AdamW betas (default 0.9 0.999)")
    p.add_argument("--weight-decay", type=float, help="AdamW weight decay (default 1e-4)")
    p.add_argument("--decay-epochs", type=int,
                   help="multiply lr by --gamma every N epochs (default 250, 0 = never)")
    p.add_argument("--gamma", type=float, help="lr decay factor (default 0.5)")
    p.add_argument("--epochs", type=int, help="training length in epochs (default 1000)")
    p.add_argument("--steps", type=int, help="training length in steps (overrides --epochs)")
    p.add_argument("--repeat", type=int, help="patches per image per epoch (default 64)")
    p.add_argument("--amp", choices=sorted(AMP), help="mixed precision on CUDA (default none)")
    p.add_argument("--workers", type=int, help="DataLoader worker processes (default 4)")
    p.add_argument("--save-every", type=int, help="checkpoint every N steps (default 1000)")
    p.add_argument("--val", metavar="DIR", help="HR folder for validation PSNR")
    p.add_argument("--val-every", type=int, help="validate every N steps (default 1000)")
    p.add_argument("--log-every", type=int, help="log loss every N steps (default 100)")
    p.add_argument("--seed", type=int, help="random seed (default 0)")
    p.add_argument("--cache", metavar="DIR", help="LR/HR cache folder (default RUN/cache)")
    p.add_argument("--device", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--backend", help="op backend of the fused model (default auto)")
    p.add_argument("--compile", action=argparse.BooleanOptionalAction,
                   help="run the training step under torch.compile (compiled on the first step: "
                        "minutes on a CPU); see the README for when it pays")
    p.set_defaults(handler=_run)


def _run(args):
    options = {k: getattr(args, k) for k in DEFAULTS}
    last = train(args.out, args.resume, **options)
    if distributed.from_env().main:
        print(json.dumps(last))
