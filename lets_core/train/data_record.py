"""What a run trains on, recorded in its checkpoint so that a resume on other data is refused.

A run killed after epoch 1 and resumed with another dataset, split seed, limit, image size or
class list would otherwise train its remaining epochs on the new data and exit 0, leaving weights
that belong to neither. The record names the data (dataset, classes, input shape, image counts)
and carries a SHA-256 of the training and validation images and labels, so two subsets of equal
size drawn with different seeds are told apart too. The test split is left out: it never touches
training, and evaluating a resumed run on another test subset is legitimate.
"""

from __future__ import annotations

import hashlib
from typing import Any

from torch import Tensor

from ..data import Splits
from ..data.sources import ImageSet


def data_record(splits: Splits) -> dict[str, Any]:
    """The description of ``splits``' training and validation data that a checkpoint keeps."""
    return {
        "dataset": splits.name,
        "classes": list(splits.train.classes),
        "in_chans": splits.in_chans,
        "image_size": splits.image_size,
        "train_images": len(splits.train),
        "val_images": len(splits.val),
        "train_sha256": _digest(splits.train),
        "val_sha256": _digest(splits.val),
    }


def data_change(saved: dict[str, Any] | None, now: dict[str, Any]) -> str | None:
    """None when a checkpoint's record matches the data of this run; otherwise the differences."""
    if saved is None:
        return "the checkpoint records no training data (written by an older lets_core), so it cannot be checked"
    keys = [k for k in now if saved.get(k) != now[k]]
    if not keys:
        return None
    return ", ".join(f"{k}: checkpoint {_short(saved.get(k))} vs now {_short(now[k])}" for k in keys)


def _digest(data: ImageSet) -> str:
    h = hashlib.sha256()
    for tensor in (data.images, data.labels):
        h.update(_bytes(tensor))
    h.update("\n".join(data.classes).encode())
    return h.hexdigest()


def _bytes(tensor: Tensor) -> memoryview:
    # The raw buffer of a CPU tensor: no copy beyond making it contiguous.
    return memoryview(tensor.detach().cpu().contiguous().numpy()).cast("B")


def _short(value: Any) -> str:
    if isinstance(value, str) and len(value) == 64:  # a digest: the first characters identify it
        return value[:12] + "..."
    if isinstance(value, list) and len(value) > 6:
        return repr(value[:6])[:-1] + f", ... ({len(value)} in all)]"
    return repr(value)
