"""CPU benchmark of the window operators against the reference ops at ASID's real shapes: a
preset of ``asid-fast bench`` (same harness, same table), forward and forward+backward both on
one 1x184x320 map (the padded LR of a 720p x4 output), d = 36 / 24 / 12, meso and global
windows; shared-window and channel attention too unless ``--only-window``. Run from the
repository root:

    python bench/bench_ops_cpu.py --threads 2 --repeats 10

which runs ``asid-fast bench --device cpu --suites ops --ops window_attention,
shared_window_attention,channel_attention --backends cpu --train-batch 1 --train-size 180x320
--threads 2 --repeats 10``.
"""
from __future__ import annotations

import argparse
import os
import sys


def cli_args(argv=None) -> list[str]:
    """The ``asid-fast`` arguments of this preset."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=10, help="timed rounds")
    p.add_argument("--only-window", action="store_true", help="window_attention only")
    p.add_argument("--json", help="write the report as JSON to this file")
    args = p.parse_args(argv)
    ops = ("window_attention" if args.only_window
           else "window_attention,shared_window_attention,channel_attention")
    return (["bench", "--device", "cpu", "--suites", "ops", "--ops", ops, "--backends", "cpu",
             "--train-batch", "1", "--train-size", "180x320", "--threads", str(args.threads),
             "--repeats", str(args.repeats)] + (["--json", args.json] if args.json else []))


def main(argv=None) -> int:
    args = cli_args(argv)
    # read when torch loads, so set before asid_fast (and torch) is imported
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    os.environ.setdefault("OMP_NUM_THREADS", args[args.index("--threads") + 1])
    from asid_fast.cli import main as cli_main

    return cli_main(args)


if __name__ == "__main__":
    sys.exit(main())
