"""User tools behind the ``asid-fast`` command: upscale, eval, train (and bench).

Each subcommand lives in its own module exposing ``add_parser(subparsers)`` and a plain Python
function doing the work (:func:`upscale.upscale`, :func:`evaluate.evaluate`, :func:`train.train`).
"""
from .errors import UserError

__all__ = ["UserError"]
