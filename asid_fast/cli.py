"""The ``asid-fast`` command (also ``python -m asid_fast``): upscale, eval, train, bench.

Each subcommand's module in :mod:`asid_fast.tools` exposes ``add_parser(subparsers)``, which
registers the subcommand with a ``handler(args)``. User mistakes raise
:class:`asid_fast.tools.UserError` and end as a one-line message with a non-zero exit status.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from .tools.errors import UserError

# modules in asid_fast.tools providing subcommands, in the order shown by --help
COMMANDS = ["upscale", "evaluate", "train", "bench", "export"]
EXIT_USER_ERROR = 1
EXIT_INTERRUPTED = 130


def _command_module(name):
    """Import ``asid_fast.tools.<name>``; None if that module does not exist (yet)."""
    full = f"{__package__}.tools.{name}"
    try:
        return importlib.import_module(full)
    except ModuleNotFoundError as e:
        if e.name == full:
            return None
        raise


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="asid-fast",
                                     description="Fast, exact ASID super-resolution.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMANDS:
        module = _command_module(name)
        if module is not None:
            module.add_parser(sub)
    return parser


def main(argv=None) -> int:
    """Run the CLI; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        args.handler(args)
    except UserError as e:
        if not e.quiet:
            print(f"asid-fast {args.command}: error: {e}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print(f"asid-fast {args.command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    return 0


if __name__ == "__main__":
    sys.exit(main())
