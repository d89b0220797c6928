"""Data-parallel training under torchrun: which process this is, the process group, and the few
collectives training needs. Without torchrun (no WORLD_SIZE in the environment), or with one
process, every helper does the single-process thing and no process group is made.

Rank 0 does the one-time work (reading and writing the run folder, caching the data) and
finds the user's mistakes; :func:`main_only` and :func:`main_first` pass its result, or its
error, to the other ranks, which then exit with it without printing it again.
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.distributed as dist

from .errors import UserError


@dataclass(frozen=True)
class Ranks:
    """Where this process stands in its job (rank 0 of 1 without torchrun)."""

    rank: int = 0
    local_rank: int = 0         # the process's index on its machine: its GPU under torchrun
    world_size: int = 1

    @property
    def main(self) -> bool:
        """Whether this process writes the run folder (rank 0)."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        """Whether there are other processes to talk to."""
        return self.world_size > 1


def from_env() -> Ranks:
    """This process's place in a torchrun job (RANK, LOCAL_RANK, WORLD_SIZE), or rank 0 of 1."""
    if "WORLD_SIZE" not in os.environ:
        return Ranks()
    try:
        return Ranks(int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0")),
                     int(os.environ["WORLD_SIZE"]))
    except (KeyError, ValueError):
        raise UserError("WORLD_SIZE is set but RANK is missing or not a number: launch "
                        "several processes with torchrun") from None


@contextmanager
def session():
    """Yield this process's :class:`Ranks`; with several processes, the default process group
    (gloo for CPU tensors, NCCL for CUDA ones) exists for the block."""
    ranks = from_env()
    if not ranks.distributed:
        yield ranks
        return
    nccl = torch.cuda.is_available() and dist.is_nccl_available()
    dist.init_process_group("cpu:gloo,cuda:nccl" if nccl else "gloo")
    try:
        yield ranks
    finally:
        dist.destroy_process_group()


def _active() -> bool:
    """Whether a process group with other processes is set up."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def _on_rank0(fn, args, kwargs, send_result: bool):
    """Run ``fn`` on rank 0 and tell every rank how it went: rank 0 gets its result, the
    others its result too if ``send_result`` (pickled across), else None. Rank 0's UserError
    is raised on every rank (shown by rank 0 only)."""
    box, result = [None], None
    if dist.get_rank() == 0:
        try:
            result = fn(*args, **kwargs)
            box[0] = (True, result if send_result else None)
        except UserError as e:
            box[0] = (False, str(e))
    dist.broadcast_object_list(box, src=0)
    ok, value = box[0]
    if not ok:
        error = UserError(value)
        error.quiet = dist.get_rank() != 0
        raise error
    return result if dist.get_rank() == 0 else value


def main_only(fn, *args, **kwargs):
    """``fn(*args, **kwargs)`` on rank 0 only; every rank returns its result or raises its
    UserError."""
    if not _active():
        return fn(*args, **kwargs)
    return _on_rank0(fn, args, kwargs, send_result=True)


def main_first(fn, *args, **kwargs):
    """``fn(*args, **kwargs)`` on rank 0, then, if it succeeded, on every other rank; each
    returns its own result. Rank 0 does the one-time work (e.g. caching) and finds the errors."""
    if not _active():
        return fn(*args, **kwargs)
    result = _on_rank0(fn, args, kwargs, send_result=False)
    return result if dist.get_rank() == 0 else fn(*args, **kwargs)


def local_cuda(device: torch.device, ranks: Ranks) -> torch.device:
    """The GPU of this torchrun process, cuda:LOCAL_RANK, made current; UserError if
    ``device`` names another one or this machine has too few."""
    if device.index is not None:
        raise UserError(f"under torchrun each process uses the GPU of its LOCAL_RANK: give "
                        f"--device cuda (or auto), not {device}")
    count = torch.cuda.device_count()
    if ranks.local_rank >= count:
        raise UserError(f"LOCAL_RANK is {ranks.local_rank} but this machine has {count} CUDA "
                        f"devices: start at most {count} processes per machine")
    torch.cuda.set_device(ranks.local_rank)
    return torch.device("cuda", ranks.local_rank)


def wrap(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """``model`` in DistributedDataParallel (gradients averaged over the ranks) when there
    are several processes, else ``model`` itself."""
    if not _active():
        return model
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)


def barrier() -> None:
    """Wait for every rank (nothing with one process)."""
    if _active():
        dist.barrier()


def mean(value: torch.Tensor) -> torch.Tensor:
    """The mean of ``value`` over all ranks (``value`` itself with one process)."""
    if not _active():
        return value
    total = value.clone()
    dist.all_reduce(total)
    return total / dist.get_world_size()
