"""Process-group set-up for `torchrun`, and the reductions the training loop needs.

Without torchrun's environment (RANK / WORLD_SIZE) everything runs as a single process and no
process group is created, so the same code path serves laptops and clusters.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

import torch
import torch.distributed as dist
from torch import nn


@dataclass(frozen=True)
class DistEnv:
    """Where this process stands: its rank, the number of processes, its device."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def _env_int(name: str, default: int, low: int) -> int:
    text = os.environ.get(name)
    if text is None:
        return default
    try:
        value = int(text.strip())
    except ValueError:
        value = None
    if value is None or value < low:
        raise ValueError(f"environment variable {name}={text!r} must be an integer >= {low} (torchrun sets it; "
                         f"unset it to run one process)")
    return value


def launch_ranks() -> tuple[int, int, int]:
    """(WORLD_SIZE, RANK, LOCAL_RANK) from the environment torchrun sets; (1, 0, 0) without it.

    Checked, because a stray value makes a single process believe it is one rank of several: a
    left-over RANK=3 made `lets evaluate` shard its data from image 3, print nothing (only rank 0
    prints) and exit 0."""
    world = _env_int("WORLD_SIZE", 1, 1)
    rank = _env_int("RANK", 0, 0)
    local = _env_int("LOCAL_RANK", 0, 0)
    if rank >= world:
        raise ValueError(f"environment variable RANK={rank} must be below WORLD_SIZE={world} (torchrun sets both; "
                         f"unset RANK to run one process)")
    return world, rank, local


def init_distributed(device: str | None = None) -> DistEnv:
    """Join the process group torchrun describes (NCCL on GPU, gloo on CPU), or run alone.

    ``device``: "cpu", "cuda", or None for CUDA when available.
    """
    use_cuda = torch.cuda.is_available() if device is None else device.startswith("cuda")
    if use_cuda and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} was asked for but CUDA is not available; use device='cpu'")
    world, rank, local = launch_ranks()
    if use_cuda:
        torch.cuda.set_device(local)
        dev = torch.device("cuda", local)
    else:
        dev = torch.device("cpu")
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return DistEnv(rank, world, local, dev)


def wrap_ddp(model: nn.Module, env: DistEnv) -> nn.Module:
    """DistributedDataParallel around ``model`` when there are several processes; else ``model``.

    DDP broadcasts rank 0's parameters at construction, so every rank starts identical even if
    their random initializations differed.
    """
    if not env.distributed:
        return model
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(model, device_ids=[env.device.index] if env.device.type == "cuda" else None)


def unwrap(model: nn.Module) -> nn.Module:
    return model.module if hasattr(model, "module") and isinstance(model, nn.parallel.DistributedDataParallel) else model


def all_reduce_sum(values: torch.Tensor, env: DistEnv) -> torch.Tensor:
    """Sum ``values`` over all ranks (a no-op for one process)."""
    if env.distributed:
        dist.all_reduce(values, op=dist.ReduceOp.SUM)
    return values


def barrier(env: DistEnv) -> None:
    if env.distributed:
        dist.barrier()


def shutdown(env: DistEnv) -> None:
    if env.distributed and dist.is_initialized():
        dist.destroy_process_group()


@contextmanager
def distributed_session(device: str | None = None) -> Iterator[DistEnv]:
    """:func:`init_distributed` for the length of a ``with`` block, and :func:`shutdown` after it,
    also when the block raises.

    Example:
        >>> with distributed_session("cpu") as env:
        ...     env.world_size
        1
    """
    env = init_distributed(device)
    try:
        yield env
    finally:
        shutdown(env)
