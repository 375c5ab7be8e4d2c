"""Multi-process training under ``torchrun`` (torch.distributed, ``env://`` rendezvous).

``torchrun --nproc_per_node N`` sets RANK, LOCAL_RANK and WORLD_SIZE; :func:`setup` then
joins the process group (NCCL on CUDA, gloo on CPU) and gives each process its device
(``cuda:LOCAL_RANK`` on CUDA). Without those variables everything is a single process.
"""
from __future__ import annotations

import inspect
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from cfin.errors import CFINError


@dataclass(frozen=True)
class DistInfo:
    """This process's place in the run."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    owns_group: bool = False  # whether setup() created the process group (teardown destroys it)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def _env_int(name: str) -> int | None:
    v = os.environ.get(name)
    if v is None:
        return None
    try:
        return int(v)
    except ValueError:
        raise CFINError(f"environment variable {name}={v!r} must be an integer (set by torchrun)") from None


def launched_processes() -> int:
    """How many processes ``torchrun`` started (``WORLD_SIZE``); 1 without it."""
    return _env_int("WORLD_SIZE") or 1


def launched_rank() -> int:
    """This process's rank among them (``RANK``); 0 without torchrun."""
    return _env_int("RANK") or 0


def setup(device: torch.device) -> tuple[DistInfo, torch.device]:
    """Join the ``torchrun`` process group if there is one; returns (info, this process's device)."""
    if dist.is_available() and dist.is_initialized():
        info = DistInfo(dist.get_rank(), dist.get_world_size(), _env_int("LOCAL_RANK") or 0)
    else:
        world = _env_int("WORLD_SIZE") or 1
        if world <= 1:
            return DistInfo(), device
        if not dist.is_available():
            raise CFINError("WORLD_SIZE > 1 but this torch build has no torch.distributed")
        info = DistInfo(_env_int("RANK") or 0, world, _env_int("LOCAL_RANK") or 0, owns_group=True)
    if device.type == "cuda":
        if torch.cuda.device_count() <= info.local_rank:
            raise CFINError(f"process with LOCAL_RANK {info.local_rank} has no GPU: only "
                            f"{torch.cuda.device_count()} visible; use --nproc_per_node <= that")
        device = torch.device("cuda", info.local_rank)
        torch.cuda.set_device(device)
    if info.owns_group:
        # device_id binds NCCL to the rank's GPU; torch < 2.3 has no such argument
        bind = device.type == "cuda" and "device_id" in inspect.signature(dist.init_process_group).parameters
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo", init_method="env://",
                                **({"device_id": device} if bind else {}))
    return info, device


def teardown(info: DistInfo) -> None:
    if info.owns_group and dist.is_initialized():
        dist.destroy_process_group()


def barrier(info: DistInfo) -> None:
    if info.distributed:
        dist.barrier()


def all_gather_object(info: DistInfo, obj) -> list:
    """``[obj of rank 0, obj of rank 1, ...]`` on every process."""
    if not info.distributed:
        return [obj]
    out = [None] * info.world_size
    dist.all_gather_object(out, obj)
    return out


def all_reduce_sum(info: DistInfo, t: torch.Tensor) -> torch.Tensor:
    """The sum of ``t`` over all processes (in place; returns ``t``)."""
    if info.distributed:
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t
