"""More than one process (``torchrun --nproc-per-node N``, ``make figures GPUS=N``): each rank
trains its share of a cell's independent SAE groups, and the cache is where results meet.

Every rank runs the same notebook, so every rank reaches the same ``saes.get_saes`` calls in
the same order. In each, rank r trains groups r, r + N, ... (in the order of their keys),
then waits at a barrier until every rank has finished its share; from there on every group
is cached and each rank loads all of them. Each group is trained by one rank exactly as one
process would train it, so the results equal a one-process run. Ranks other than 0 write
their executed notebooks and figures to a scratch folder (``notebook_runner``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TypeVar

import torch

T = TypeVar("T")


def rank() -> int:
    return int(os.environ.get("RANK", "0"))


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def _group() -> None:
    """The process group torchrun's environment describes, started on first use (gloo: a
    barrier needs no GPU)."""
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group(backend="gloo")


def share(items: Sequence[T]) -> list[T]:
    """This rank's items: every ``world_size()``-th, from ``rank()``."""
    return list(items[rank()::world_size()])


def barrier() -> None:
    """Wait until every rank gets here (nothing to wait for in one process)."""
    if world_size() > 1:
        _group()
        torch.distributed.barrier()


def local_device() -> str | None:
    """The GPU this rank should use (``cuda:LOCAL_RANK``), or None in one process or without CUDA."""
    if world_size() > 1 and torch.cuda.is_available():
        return f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"
    return None
