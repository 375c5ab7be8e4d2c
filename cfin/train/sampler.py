"""Data order that a resumed or distributed run reproduces exactly.

The order of epoch ``e`` is a permutation drawn from a generator seeded by ``(seed, e)``
alone, cut into global batches of ``batch_size``; process ``rank`` of ``world_size``
takes its contiguous share of each global batch. So the patches in global step ``t`` are
the same for any number of processes, and a run resumed at step ``t`` skips exactly the
batches an uninterrupted run had consumed.
"""
from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Sampler

from cfin.errors import CFINError


def derive_seed(*keys: int) -> int:
    """A 63-bit seed from a tuple of non-negative ints (independent streams per tuple)."""
    return int(np.random.SeedSequence(list(keys)).generate_state(1, dtype=np.uint64)[0]) >> 1


DATA_ORDER_STREAM = 1  # first key of derive_seed for data order; the trainer uses others


class ResumableSampler(Sampler[int]):
    """Indices of this process's share of global batches ``start_batch..`` of one epoch.

    Args:
        num_samples: length of the dataset.
        batch_size: the global batch (over all processes); a partial last batch is dropped.
        seed: the run's seed.
        rank: this process's rank.
        world_size: number of processes; must divide ``batch_size``.
    """

    def __init__(self, num_samples: int, batch_size: int, seed: int, rank: int = 0, world_size: int = 1):
        if batch_size % world_size:
            raise CFINError(f"batch_size {batch_size} must be divisible by the number of processes {world_size}")
        if num_samples < batch_size:
            raise CFINError(f"the training set has {num_samples} samples, fewer than one batch of {batch_size}")
        self.num_samples = num_samples
        self.batch_size = batch_size
        self.per_rank = batch_size // world_size
        self.seed = seed
        self.rank = rank
        self.epoch = 0
        self.start_batch = 0

    @property
    def batches_per_epoch(self) -> int:
        return self.num_samples // self.batch_size

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        """Iterate epoch ``epoch`` from global batch ``start_batch`` on."""
        if not 0 <= start_batch < self.batches_per_epoch:
            raise ValueError(f"start_batch {start_batch} outside [0, {self.batches_per_epoch})")
        self.epoch, self.start_batch = epoch, start_batch

    def permutation(self, epoch: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(derive_seed(DATA_ORDER_STREAM, self.seed, epoch))
        dtype = torch.int32 if self.num_samples < 2**31 else torch.int64
        return torch.randperm(self.num_samples, generator=g, dtype=dtype)

    def __iter__(self):
        batches = self.permutation(self.epoch)[: self.batches_per_epoch * self.batch_size]
        mine = batches.view(self.batches_per_epoch, self.batch_size)[
            self.start_batch:, self.rank * self.per_rank:(self.rank + 1) * self.per_rank]
        for row in mine:  # lazily: an epoch may hold millions of indices
            yield from row.tolist()

    def __len__(self) -> int:
        return (self.batches_per_epoch - self.start_batch) * self.per_rank
