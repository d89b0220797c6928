"""CPU benchmark of the fused model against the reference: two presets of ``asid-fast bench``
(same harness, same table) run one after the other in this process.

* Inference: ASID x4 on a 1x3x180x320 input (720p output): reference and fused model (backend
  ``--backend``), and ``torch.compile`` of both unless ``--skip-compile``.
* Training step: ASID x2, batch 4 of 64x64 patches (forward, L1 loss, backward, Adam), reference
  and fused model, unless ``--skip-training``.

Run from the repository root:

    python bench/bench_model_cpu.py --threads 2 --rounds 3 [--json cpu_model.json]

``--json F.json`` writes ``F_inference.json`` and ``F_train_step.json``.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def cli_runs(argv=None) -> list[list[str]]:
    """The ``asid-fast`` arguments of each run of this preset."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--backend", default="auto", help="op backend of the fused model")
    p.add_argument("--rounds", type=int, default=5, help="timed rounds")
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--skip-compile", action="store_true", help="no torch.compile candidates")
    p.add_argument("--skip-training", action="store_true")
    p.add_argument("--json", help="stem of the JSON reports")
    args = p.parse_args(argv)
    common = ["bench", "--device", "cpu", "--model", "asid", "--fused-backend", args.backend,
              "--threads", str(args.threads), "--repeats", str(args.rounds), "--warmup",
              str(args.warmup)]

    def json_of(suite):
        if not args.json:
            return []
        path = Path(args.json)
        return ["--json", str(path.with_name(f"{path.stem}_{suite}{path.suffix or '.json'}"))]

    runs = [common + ["--suites", "inference", "--scale", "4", "--size", "180x320"]
            + ([] if args.skip_compile else ["--compare", "compile"]) + json_of("inference")]
    if not args.skip_training:
        runs.append(common + ["--suites", "train_step", "--scale", "2", "--train-batch", "4",
                              "--train-size", "64x64"] + json_of("train_step"))
    return runs


def main(argv=None) -> int:
    runs = cli_runs(argv)
    # read when torch loads, so set before asid_fast (and torch) is imported
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    os.environ.setdefault("OMP_NUM_THREADS", runs[0][runs[0].index("--threads") + 1])
    from asid_fast.cli import main as cli_main

    for args in runs:
        status = cli_main(args)
        if status:
            return status
    return 0


if __name__ == "__main__":
    sys.exit(main())
