"""Shared fixtures of the training tests: a small Fashion-MNIST-shaped dataset and a quick recipe."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lets_core.data import load_splits, write_idx
from lets_core.train import TrainConfig


def fake_fashion_mnist(folder: Path, n_train: int = 96, n_test: int = 32, seed: int = 0) -> Path:
    """The exact Fashion-MNIST file layout with random images and a class-dependent corner patch."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        labels = (np.arange(n) % 10).astype(np.uint8)
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        images[:, :7, :7] = labels[:, None, None] * 25
        write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", images)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", labels)
    return folder


def small_splits(tmp_path: Path, **kwargs):
    return load_splits("fashion-mnist", fake_fashion_mnist(tmp_path / "fm", **kwargs), val_size=16, seed=0)


def quick_recipe(**overrides) -> TrainConfig:
    base = dict(epochs=3, batch_size=16, lr=4e-3, warmup_epochs=0.5, progress=False, num_workers=0)
    return TrainConfig(**{**base, **overrides})
