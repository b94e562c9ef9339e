"""Deterministic train / validation / test splits, resizing and per-channel normalization statistics."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from .errors import DatasetError
from .sources import (DATASETS, ImageSet, load_digits, load_fashion_mnist, load_image_folder)

# Datasets without an official test split hold this fraction out, seeded.
HELD_OUT_TEST_FRACTION = 0.2
# Mirror images are still members of their class for clothes and photos, not for digits.
DEFAULT_HFLIP = {"fashion-mnist": True, "digits": False, "folder": True}


@dataclass
class Splits:
    """The three splits of one dataset plus what a model needs to know about its inputs."""

    name: str
    train: ImageSet
    val: ImageSet
    test: ImageSet
    mean: tuple[float, ...]
    std: tuple[float, ...]
    hflip: bool

    @property
    def num_classes(self) -> int:
        return len(self.train.classes)

    @property
    def in_chans(self) -> int:
        return self.train.images.shape[1]

    @property
    def image_size(self) -> int:
        return self.train.images.shape[-1]

    def describe(self) -> dict:
        return {"dataset": self.name, "train": len(self.train), "val": len(self.val), "test": len(self.test),
                "image_size": self.image_size, "in_chans": self.in_chans, "num_classes": self.num_classes,
                "mean": list(self.mean), "std": list(self.std)}


def load_splits(name: str = "fashion-mnist", root: str | Path | None = None, *, image_size: int | None = None,
                channels: int | None = None, val_size: float | int = 0.1, train_limit: int | None = None,
                test_limit: int | None = None, seed: int = 0, hflip: bool | None = None) -> Splits:
    """Load ``name`` and split it deterministically for ``seed``.

    Args:
        name: "fashion-mnist", "digits" or "folder" (``root`` then holds ``<class>/`` subfolders,
            or ``train/<class>/`` and ``test/<class>/``).
        root: data location (Fashion-MNIST folder or image folder).
        image_size: resize to this square size (required for "folder"); None keeps the native size.
        channels: 1 or 3; converts grey <-> RGB. None keeps the source's.
        val_size: validation images taken from the training data: a fraction in [0, 1) or a count.
        train_limit, test_limit: keep a seeded random subset of this many images (quick runs); the
            test subset depends on ``seed`` and ``test_limit`` only.
        seed: fixes every random choice above.
        hflip: allow horizontal-flip augmentation; None = the dataset's default.
    """
    if name not in DATASETS:
        raise DatasetError(f"unknown dataset {name!r}; allowed: {list(DATASETS)}")
    # Checked up front: a wrong value must fail before minutes of decoding, and 0 is no "default".
    if image_size is not None and (isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 1):
        raise DatasetError(f"image_size must be a positive integer or None, got {image_size!r}")
    if channels is not None and channels not in (1, 3):
        raise DatasetError(f"channels must be 1, 3 or None, got {channels!r}")
    gen = torch.Generator().manual_seed(seed)
    if name == "fashion-mnist":
        pool, test = load_fashion_mnist("train", root), load_fashion_mnist("test", root)
    elif name == "digits":
        pool, test = _hold_out(load_digits(), gen)
    else:
        if root is None or image_size is None:
            raise DatasetError("the 'folder' dataset needs root (the image folder) and image_size")
        root = Path(root)
        chans = channels or 3
        if (root / "train").is_dir() and (root / "test").is_dir():
            pool = load_image_folder(root / "train", chans, image_size)
            test = load_image_folder(root / "test", chans, image_size, classes=pool.classes)
        else:
            pool, test = _hold_out(load_image_folder(root, chans, image_size), gen)
    n_val = _count(val_size, len(pool), "val_size")
    order = torch.randperm(len(pool), generator=gen)
    val, train = pool.subset(order[:n_val]), pool.subset(order[n_val:])
    train = _limit(train, train_limit, gen, "train_limit")
    # Its own generator: drawn from ``gen`` after the validation and training draws, the test subset
    # changed with val_size and train_limit, so two runs with one seed were tested on other images.
    test = _limit(test, test_limit, torch.Generator().manual_seed(seed), "test_limit")
    train, val, test = (_convert(s, image_size, channels) for s in (train, val, test))
    if len(train) == 0:
        raise DatasetError(f"no training images left after val_size={val_size!r} and train_limit={train_limit!r}")
    mean, std = channel_stats(train)
    return Splits(name, train, val, test, mean, std, DEFAULT_HFLIP[name] if hflip is None else hflip)


def channel_stats(data: ImageSet) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std of ``data`` in [0, 1] units (computed on the training split only)."""
    x = data.images.to(torch.float64).div_(255.0)
    mean = x.mean(dim=(0, 2, 3))
    std = x.std(dim=(0, 2, 3)).clamp_min(1e-3)
    return tuple(float(v) for v in mean), tuple(float(v) for v in std)


def _hold_out(data: ImageSet, gen: torch.Generator) -> tuple[ImageSet, ImageSet]:
    order = torch.randperm(len(data), generator=gen)
    n_test = int(round(HELD_OUT_TEST_FRACTION * len(data)))
    return data.subset(order[n_test:]), data.subset(order[:n_test])


def _count(size: float | int, total: int, what: str) -> int:
    if isinstance(size, bool) or not isinstance(size, (int, float)) or not math.isfinite(size) or size < 0:
        raise DatasetError(f"{what} must be a fraction in [0, 1) or a count >= 0, got {size!r}")
    if isinstance(size, float) and size >= 1:  # a whole float (5.0) reads as a fraction, not a count
        count = f"; give a count as an integer ({int(size)})" if size.is_integer() else ""
        raise DatasetError(f"{what}={size!r}: a float is a fraction of the training images and must be below 1{count}")
    n = int(round(size * total)) if isinstance(size, float) else size
    if n >= total:
        raise DatasetError(f"{what}={size!r} would leave no training images out of {total}")
    if n == 0 and size > 0:  # a positive fraction that rounds to no image: training would run unvalidated
        raise DatasetError(f"{what}={size!r} of {total} images is less than one image; give at least "
                           f"{1 / total:.2g} or a count")
    return n


def _limit(data: ImageSet, limit: int | None, gen: torch.Generator, what: str) -> ImageSet:
    if limit is None:
        return data
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise DatasetError(f"{what} must be a positive integer or None, got {limit!r}")
    if limit >= len(data):
        return data
    return data.subset(torch.randperm(len(data), generator=gen)[:limit].sort().values)


def _convert(data: ImageSet, image_size: int | None, channels: int | None) -> ImageSet:
    images = data.images
    if channels is not None and channels != images.shape[1]:
        if channels == 3 and images.shape[1] == 1:
            images = images.expand(-1, 3, -1, -1).contiguous()
        elif channels == 1 and images.shape[1] == 3:
            weights = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
            images = (images.float() * weights).sum(1, keepdim=True).round().clamp(0, 255).to(torch.uint8)
        else:
            raise DatasetError(f"cannot convert {images.shape[1]}-channel images to {channels} channels; "
                               "allowed: 1 or 3")
    if image_size is not None and image_size != images.shape[-1]:
        if not isinstance(image_size, int) or image_size < 1:
            raise DatasetError(f"image_size must be a positive integer, got {image_size!r}")
        resized = F.interpolate(images.float(), size=(image_size, image_size), mode="bilinear",
                                align_corners=False, antialias=image_size < images.shape[-1])
        images = resized.round().clamp(0, 255).to(torch.uint8)
    return ImageSet(images, data.labels, data.classes)
