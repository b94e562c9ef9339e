"""Datasets for training and evaluating LeTs models: Fashion-MNIST, scikit-learn digits, image folders.

    >>> from lets_core.data import load_splits, train_loader, eval_loader
    >>> splits = load_splits("digits", seed=0)
    >>> loader = train_loader(splits, batch_size=64)
"""

from .errors import DatasetError, DatasetNotFoundError
from .idx import read_idx, write_idx
from .loaders import (ImageDataset, ShardSampler, default_num_workers, eval_loader, images_per_epoch, set_epoch,
                      train_loader)
from .sources import (DATASETS, FASHION_MNIST_DIR, FASHION_MNIST_ENV, FASHION_MNIST_INSTALL, ImageSet,
                      fashion_mnist_available, load_digits, load_fashion_mnist, load_image_folder)
from .splits import Splits, channel_stats, load_splits

__all__ = [
    "DATASETS", "DatasetError", "DatasetNotFoundError", "FASHION_MNIST_DIR", "FASHION_MNIST_ENV",
    "FASHION_MNIST_INSTALL", "ImageDataset", "ImageSet", "ShardSampler", "Splits", "channel_stats",
    "default_num_workers", "eval_loader", "fashion_mnist_available", "images_per_epoch", "load_digits", "load_fashion_mnist",
    "load_image_folder", "load_splits", "read_idx", "set_epoch", "train_loader", "write_idx",
]
