"""Datasets with normalization and light augmentation, and the DataLoaders built on them.

Augmentation randomness is a function of (seed, epoch, image index) only, not of a global RNG,
worker id or process rank. That is what makes a resumed run, a run with a different number of
workers, and a distributed run see exactly the same augmented images as an uninterrupted
single-process run.
"""

from __future__ import annotations

import math

import os

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler

from .errors import DatasetError
from .sources import ImageSet
from .splits import Splits

_MIX = (0x9E3779B97F4A7C15, 0xBF58476D1CE4E5B9, 0x94D049BB133111EB)


class ImageDataset(Dataset):
    """Normalized float images from an :class:`ImageSet`, optionally with random shifts and flips.

    Training augmentation: a random translation of up to ``shift`` pixels (zero padding) and,
    if ``hflip``, a horizontal flip with probability 1/2.
    """

    def __init__(self, data: ImageSet, mean: tuple[float, ...], std: tuple[float, ...], *,
                 augment: bool = False, shift: int | None = None, hflip: bool = False, seed: int = 0) -> None:
        self.data = data
        self.mean = torch.tensor(mean).view(-1, 1, 1)
        self.std = torch.tensor(std).view(-1, 1, 1)
        self.augment = augment
        # About 1/14 of the side: 2 px on 28 px images, 1 px on 8 px digits.
        self.shift = max(1, data.images.shape[-1] // 14) if shift is None else shift
        self.hflip = hflip
        self.seed = seed
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.data)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        x = self.data.images[index].float().div_(255.0)
        if self.augment:
            x = self._augment(x, index)
        return (x - self.mean) / self.std, self.data.labels[index]

    def _augment(self, x: Tensor, index: int) -> Tensor:
        gen = torch.Generator().manual_seed(_mix(self.seed, self.epoch, index))
        s = self.shift
        if s > 0:
            dy, dx = torch.randint(0, 2 * s + 1, (2,), generator=gen).tolist()
            h, w = x.shape[-2:]
            x = F.pad(x, (s, s, s, s))[:, dy:dy + h, dx:dx + w]
        if self.hflip and torch.rand((), generator=gen).item() < 0.5:
            x = x.flip(-1)
        return x


class ShardSampler(Sampler[int]):
    """Evaluation sharding without padding: rank r takes indices r, r + world, ...

    DistributedSampler pads with repeated images so every rank has the same count, which would
    count those images twice; metrics are summed across ranks instead, so no padding is needed.
    """

    def __init__(self, length: int, rank: int = 0, world_size: int = 1) -> None:
        self.length, self.rank, self.world_size = length, rank, world_size

    def __iter__(self):
        return iter(range(self.rank, self.length, self.world_size))

    def __len__(self) -> int:
        return len(range(self.rank, self.length, self.world_size))


def default_num_workers(world_size: int = 1) -> int:
    """Loader workers per process: none when the compute threads need every core.

    The images are in memory and augmentation is a crop and a flip, so a worker only pays for
    itself when it gets a core the model's threads are not using.
    """
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:
        cpus = os.cpu_count() or 1
    per_process = cpus // max(1, world_size)
    return 0 if per_process <= 4 else min(8, per_process // 4)


def images_per_epoch(train_images: int, batch_size: int, world_size: int = 1) -> int:
    """How many images one epoch of :func:`train_loader` trains on: each rank's sampler pads the
    data to a multiple of the ranks, and the last incomplete batch is dropped.

    >>> images_per_epoch(1000, 128)
    896
    """
    per_rank = _per_rank(batch_size, world_size)
    return world_size * per_rank * (math.ceil(train_images / world_size) // per_rank)


def train_loader(splits: Splits, batch_size: int, *, seed: int = 0, augment: bool = True, rank: int = 0,
                 world_size: int = 1, num_workers: int | None = None) -> DataLoader:
    """Shuffled training batches; ``batch_size`` is the global batch, split evenly across ranks.

    Call :func:`set_epoch` before each epoch: the order and augmentation depend on (seed, epoch).
    The last incomplete batch is dropped so every step sees a full batch.
    """
    per_rank = _per_rank(batch_size, world_size)
    if len(splits.train) < batch_size:
        raise DatasetError(f"batch_size {batch_size} is larger than the training set ({len(splits.train)} "
                           "images); lower it")
    ds = ImageDataset(splits.train, splits.mean, splits.std, augment=augment, hflip=splits.hflip, seed=seed)
    sampler = DistributedSampler(ds, num_replicas=world_size, rank=rank, shuffle=True, seed=seed)
    workers = default_num_workers(world_size) if num_workers is None else num_workers
    return DataLoader(ds, batch_size=per_rank, sampler=sampler, drop_last=True, num_workers=workers,
                      persistent_workers=False)


def eval_loader(splits: Splits, split: str, batch_size: int = 256, *, rank: int = 0, world_size: int = 1,
                num_workers: int | None = None) -> DataLoader:
    """Unshuffled, unaugmented batches of ``split`` ("train", "val" or "test"), sharded across ranks."""
    if split not in ("train", "val", "test"):
        raise DatasetError(f"split must be 'train', 'val' or 'test', got {split!r}")
    data = getattr(splits, split)
    ds = ImageDataset(data, splits.mean, splits.std)
    workers = default_num_workers(world_size) if num_workers is None else num_workers
    return DataLoader(ds, batch_size=batch_size, sampler=ShardSampler(len(ds), rank, world_size),
                      num_workers=workers)


def set_epoch(loader: DataLoader, epoch: int) -> None:
    """Make ``loader``'s next pass the one of ``epoch`` (shuffle order and augmentation)."""
    if isinstance(loader.sampler, DistributedSampler):
        loader.sampler.set_epoch(epoch)
    if isinstance(loader.dataset, ImageDataset):
        loader.dataset.set_epoch(epoch)


def _per_rank(batch_size: int, world_size: int) -> int:
    if not isinstance(batch_size, int) or batch_size < 1 or batch_size % world_size:
        raise DatasetError(f"global batch_size {batch_size!r} must be a positive multiple of the number "
                           f"of processes ({world_size})")
    return batch_size // world_size


def _mix(seed: int, epoch: int, index: int) -> int:
    """A well-spread 63-bit seed from three integers (splitmix64-style mixing)."""
    z = 0
    for value, mult in zip((seed, epoch, index), _MIX):
        z = ((z ^ (value & 0xFFFFFFFFFFFFFFFF)) * mult) & 0xFFFFFFFFFFFFFFFF
        z ^= z >> 31
    return z & 0x7FFFFFFFFFFFFFFF
