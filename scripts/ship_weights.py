"""Turn a finished ``asid-fast train`` run into shipped package weights.

    python scripts/ship_weights.py RUN --set5 ../shared/data/Set5/HR [--init-name NAME]
        [--init-record JSON] [--holdout-every N] [--machine TEXT]

Writes ``asid_fast/weights/{variant}_x{scale}.safetensors`` (the model weights of RUN/last.pt)
and a JSON record beside it: variant, scale, the training recipe (the command that reproduces the
run, its config, steps, seed, wall time estimated from the logged speed) and the Set5 PSNR/SSIM
measured with ``asid-fast eval`` conventions, next to bicubic. A run that started from earlier
shipped weights (``--init``) names their record with ``--init-record``: its recipe is kept inside
the new one, since the file it describes is replaced.
"""
from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import torch
from safetensors.torch import save_file

from asid_fast.shipped_weights import WEIGHTS_DIR
from asid_fast.tools.atomic import atomic_path, write_text
from asid_fast.tools.evaluate import evaluate

# options of `asid-fast train` that only affect logging/speed, not the result
NOT_RECIPE = {"data", "scale", "init", "backend", "device", "cache", "workers", "val",
              "val_every", "log_every", "save_every", "epochs", "amp", "world_size", "compile"}


def train_command(config: dict, steps: int, init_name: str | None) -> str:
    args = ["asid-fast train"]
    args += [f"--data {Path(d).parent.name}/{Path(d).name}" for d in config["data"]]
    args += [f"--scale {config['scale']}", f"--steps {steps}"]
    if config["init"]:
        args.append(f"--init {init_name or Path(config['init']).name}")
    for key, value in sorted(config.items()):
        if key in NOT_RECIPE or key == "steps" or value is None:
            continue
        value = " ".join(map(str, value)) if isinstance(value, list) else value
        args.append(f"--{key.replace('_', '-')} {value}")
    return " ".join(args) + " --out RUN"


def wall_time_estimate(metrics: Path) -> float:
    """Seconds, summed from the logged steps/s of each logging interval."""
    total, last_step = 0.0, 0
    for line in metrics.read_text().splitlines():
        rec = json.loads(line)
        if "it_s" in rec and rec.get("it_s"):
            total += (rec["step"] - last_step) / rec["it_s"]
            last_step = rec["step"]
    return round(total)


def data_note(holdout_every: int | None) -> str:
    note = "T91 (91), General100 (50 of 100), BSD200 (120 of 200): ../shared/data/train"
    if holdout_every:
        note += (f"; training part of `python scripts/split_holdout.py ../shared/data/train SPLIT"
                 f" --every {holdout_every}` (--data SPLIT/train/<set>); checkpoints chosen on"
                 f" SPLIT/holdout (every {holdout_every}th image of each set), not on Set5")
    return note


def init_record(path: Path) -> dict:
    """What the --init weights were: file, sha256 and the recipe that made them."""
    record = json.loads(path.read_text())
    return {k: record[k] for k in ("file", "sha256", "recipe", "init", "set5") if k in record}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("run", type=Path)
    p.add_argument("--set5", type=Path, required=True, help="Set5 HR folder")
    p.add_argument("--init-name", help="how the recipe names the --init checkpoint")
    p.add_argument("--backend", default="auto")
    p.add_argument("--init-record", type=Path,
                   help="JSON record of the shipped weights the run started from (--init)")
    p.add_argument("--holdout-every", type=int,
                   help="the run trained on the training part of scripts/split_holdout.py --every N")
    p.add_argument("--machine", default="2-core x86-64 CPU VM, no GPU, 2 threads, shared with "
                                        "other jobs")
    args = p.parse_args()

    state = torch.load(args.run / "last.pt", map_location="cpu", weights_only=False)
    config = json.loads((args.run / "config.json").read_text())
    variant, scale = config["variant"], config["scale"]
    WEIGHTS_DIR.mkdir(exist_ok=True)
    target = WEIGHTS_DIR / f"{variant}_x{scale}.safetensors"
    with atomic_path(target) as tmp:
        save_file({k: v.contiguous() for k, v in state["model"].items()}, str(tmp),
                  metadata={"variant": variant, "scale": str(scale)})
    target.chmod(0o644)  # package data: world-readable whatever the writer did

    ours = evaluate(args.set5, scale, weights=target, variant=variant, backend=args.backend)
    bicubic = evaluate(args.set5, scale, bicubic=True)
    record = {
        "variant": variant,
        "scale": scale,
        "file": target.name,
        "sha256": hashlib.sha256(target.read_bytes()).hexdigest(),
        "input_range": [-1.0, 1.0],
        "recipe": {
            "command": train_command(config, state["step"], args.init_name),
            "steps": state["step"],
            "seed": config["seed"],
            "data": data_note(args.holdout_every),
            "machine": args.machine,
            "wall_time_s_estimate": wall_time_estimate(args.run / "metrics.jsonl"),
            "config": {**{k: v for k, v in config.items() if k not in ("data", "init", "cache")},
                       "steps": state["step"]},
        },
        **({"init": init_record(args.init_record)} if args.init_record else {}),
        "set5": {"psnr": round(ours["psnr"], 4), "ssim": round(ours["ssim"], 4),
                 "protocol": "asid-fast eval: Y channel, border = scale, MATLAB-bicubic LR, "
                             "tiles 64 / overlap 24"},
        "set5_bicubic": {"psnr": round(bicubic["psnr"], 4), "ssim": round(bicubic["ssim"], 4)},
    }
    write_text(target.with_suffix(".json"), json.dumps(record, indent=2) + "\n")
    print(json.dumps(record, indent=2))


if __name__ == "__main__":
    main()
