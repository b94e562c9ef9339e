"""Where images come from: Fashion-MNIST (IDX files), scikit-learn's digits, or an image folder.

Every source yields an :class:`ImageSet`: uint8 images (N, C, H, W) held in memory, int64 labels
and class names. These datasets are small enough (Fashion-MNIST is 55 MB) that keeping them in
memory beats decoding per step, and it makes every split and augmentation reproducible.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from .errors import DatasetError, DatasetNotFoundError
from .idx import read_idx

FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_ENV = "LETS_FASHION_MNIST_DIR"
FASHION_MNIST_INSTALL = "apt-get update && apt-get install -y dataset-fashion-mnist"
FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                         "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
DATASETS = ("fashion-mnist", "digits", "folder")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")


@dataclass
class ImageSet:
    """Images (uint8, N x C x H x W), labels (int64, N) and the class names, in memory."""

    images: Tensor
    labels: Tensor
    classes: tuple[str, ...]

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.ndim != 4:
            raise DatasetError(f"ImageSet images must be uint8 N x C x H x W, got {self.images.dtype} "
                               f"of shape {tuple(self.images.shape)}")
        if self.labels.shape != (self.images.shape[0],):
            raise DatasetError(f"{self.images.shape[0]} images but labels of shape {tuple(self.labels.shape)}")
        if len(self.labels) and not (0 <= int(self.labels.min()) and int(self.labels.max()) < len(self.classes)):
            raise DatasetError(f"labels span [{int(self.labels.min())}, {int(self.labels.max())}] but there "
                               f"are {len(self.classes)} classes")

    def __len__(self) -> int:
        return self.images.shape[0]

    def subset(self, index: Tensor) -> "ImageSet":
        return ImageSet(self.images[index], self.labels[index], self.classes)


def fashion_mnist_dir(root: str | Path | None = None) -> Path:
    """The Fashion-MNIST folder: ``root``, else ``$LETS_FASHION_MNIST_DIR``, else the Debian package's."""
    if root is not None:
        return Path(root)
    return Path(os.environ.get(FASHION_MNIST_ENV) or FASHION_MNIST_DIR)


def fashion_mnist_available(root: str | Path | None = None) -> bool:
    folder = fashion_mnist_dir(root)
    return all(_idx_path(folder, f"{p}-{k}") is not None
               for p in ("train", "t10k") for k in ("images-idx3-ubyte", "labels-idx1-ubyte"))


def load_fashion_mnist(split: str, root: str | Path | None = None) -> ImageSet:
    """Fashion-MNIST ``split`` ("train": 60,000 images, "test": 10,000), 1 x 28 x 28."""
    prefix = {"train": "train", "test": "t10k"}.get(split)
    if prefix is None:
        raise DatasetError(f"Fashion-MNIST split must be 'train' or 'test', got {split!r}")
    folder = fashion_mnist_dir(root)
    paths = []
    for kind in ("images-idx3-ubyte", "labels-idx1-ubyte"):
        path = _idx_path(folder, f"{prefix}-{kind}")
        if path is None:
            raise DatasetNotFoundError(
                f"Fashion-MNIST file {prefix}-{kind}[.gz] not found in {str(folder)!r}. Install it with "
                f"`{FASHION_MNIST_INSTALL}` (files go to {FASHION_MNIST_DIR}), or point "
                f"${FASHION_MNIST_ENV} or --data-dir at a folder holding the four IDX files")
        paths.append(path)
    images, labels = read_idx(paths[0], expect_ndim=3), read_idx(paths[1], expect_ndim=1)
    # Fashion-MNIST's images are bytes; another IDX type would reach torch as a big-endian array.
    if images.dtype != np.uint8:
        raise DatasetError(f"{str(paths[0])!r} holds {images.dtype.name} values; Fashion-MNIST images are uint8 "
                           f"(IDX type 0x08)")
    if images.shape[0] != labels.shape[0]:
        raise DatasetError(f"{str(paths[0])!r} holds {images.shape[0]} images but {str(paths[1])!r} "
                           f"holds {labels.shape[0]} labels; one of the files is damaged")
    return ImageSet(torch.from_numpy(images.copy()).unsqueeze(1),
                    torch.from_numpy(labels.astype(np.int64)), FASHION_MNIST_CLASSES)


def load_digits() -> ImageSet:
    """scikit-learn's 1,797 digits (8 x 8, values 0..16, rescaled to 0..255), shipped inside its wheel."""
    try:
        from sklearn.datasets import load_digits as sk_load_digits
    except ImportError as exc:
        raise DatasetNotFoundError("the digits dataset comes with scikit-learn: `pip install scikit-learn`") from exc
    bunch = sk_load_digits()
    images = np.round(bunch.images * (255.0 / 16.0)).astype(np.uint8)
    return ImageSet(torch.from_numpy(images).unsqueeze(1), torch.from_numpy(bunch.target.astype(np.int64)),
                    tuple(str(c) for c in bunch.target_names))


def load_image_folder(root: str | Path, channels: int, image_size: int,
                      classes: tuple[str, ...] | None = None) -> ImageSet:
    """Images under ``root/<class>/*`` (one subfolder per class), resized to ``image_size`` square.

    ``classes`` fixes the label order (so a test folder matches its train folder); by default the
    sorted subfolder names.
    """
    from PIL import Image, UnidentifiedImageError

    root = Path(root)
    if not root.is_dir():
        what = "is a file, not a folder" if root.exists() else "does not exist"
        raise DatasetNotFoundError(f"image folder {str(root)!r} {what}; it must hold one "
                                   "subfolder of images per class")
    # Hidden folders (.ipynb_checkpoints, .git) and macOS archive debris are not classes: taken as
    # classes they would be label 0, 1, ... and shift every real label.
    found = tuple(sorted(p.name for p in root.iterdir()
                         if p.is_dir() and not p.name.startswith(".") and p.name != "__MACOSX"))
    classes = classes or found
    if missing := sorted(set(found) - set(classes)):
        raise DatasetError(f"{str(root)!r} has class folders {missing} not among the classes {list(classes)}")
    # With one class every prediction is right: top-1 would read 1.0 and mean nothing.
    if len(classes) < 2:
        raise DatasetError(f"image folder {str(root)!r} has {len(classes)} class folder(s) {list(classes)}; a "
                           "classifier needs at least 2, one subfolder of images per class")
    if channels not in (1, 3):
        raise DatasetError(f"image folders are read with 1 (grey) or 3 (RGB) channels, got {channels}")
    if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 1:
        raise DatasetError(f"image_size must be a positive integer, got {image_size!r}")
    mode = "L" if channels == 1 else "RGB"
    images, labels, empty = [], [], []
    for label, name in enumerate(classes):
        folder = root / name
        files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES) if folder.is_dir() else []
        if not files:
            empty.append(name)
        for path in files:
            try:
                with Image.open(path) as img:
                    img = _eight_bit(img, path).convert(mode).resize((image_size, image_size), Image.BILINEAR)
                    array = np.asarray(img, dtype=np.uint8)
            except (UnidentifiedImageError, OSError) as exc:
                raise DatasetError(f"image {str(path)!r} cannot be decoded ({exc})") from exc
            images.append(array.reshape(image_size, image_size, channels).transpose(2, 0, 1))
            labels.append(label)
    if not images:
        raise DatasetError(f"no images ({', '.join(IMAGE_SUFFIXES)}) found under {str(root)!r}/<class>/")
    # A class without images is a label the model is trained on but never shown (or, in a test
    # folder, never tested): almost always a wrong folder rather than an intended dataset.
    if empty:
        raise DatasetError(f"class folders {empty} under {str(root)!r} hold no images ({', '.join(IMAGE_SUFFIXES)}); "
                           "every class needs at least one")
    return ImageSet(torch.from_numpy(np.stack(images)), torch.tensor(labels, dtype=torch.int64), classes)


# Pillow modes with more than 8 bits per value, and the range each is read from.
_WIDE_MODES = {"I;16": 65535, "I;16B": 65535, "I;16L": 65535, "I;16N": 65535, "I": 65535, "F": 1.0}


def _eight_bit(img, path: Path):
    """A 16-bit integer or float image as 8-bit grey, scaled from its mode's range (16-bit: 0..65535,
    float: 0..1, the usual conventions). Pillow's convert("L") clips every value above 255 to 255
    and rounds a float to 0 or 1: 16-bit scans came out nearly all white and float images all
    black, and trained without a word. Values outside the range are refused by name."""
    top = _WIDE_MODES.get(img.mode)
    if top is None:
        return img
    from PIL import Image

    values = np.asarray(img, dtype=np.float64)
    if values.size and (values.min() < 0 or values.max() > top or not np.isfinite(values).all()):
        rule = "float images are read from [0, 1]" if img.mode == "F" else \
            "integer images with more than 8 bits are read from [0, 65535]"
        raise DatasetError(f"image {str(path)!r} (Pillow mode {img.mode}) has values in [{values.min():g}, "
                           f"{values.max():g}]; {rule}: rescale it (or save it as 8-bit) first")
    return Image.fromarray(np.round(values * (255.0 / top)).astype(np.uint8), mode="L")


def _idx_path(folder: Path, stem: str) -> Path | None:
    for name in (f"{stem}.gz", stem):
        if (folder / name).is_file():
            return folder / name
    return None
