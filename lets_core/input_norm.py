"""A model's input normalization: the per-channel mean and std its inputs were standardized with
when it was trained.

A model only works on inputs standardized as in its training. lets_core computes these statistics
on the training split, so they depend on the data flags of a run (``--train-limit``,
``--val-size``, ``--seed``): evaluating a saved model with its evaluation run's own statistics
changed its measured top-1 with ``--train-limit`` alone. So training records the normalization on
the model (:func:`record_input_norm`), every saved form keeps it (``bundle.json``, the Des-Net's
timm ``config.json``, ``teacher.json``), and evaluation and fine-tuning feed a model that records
one its own (:func:`normalized_for`); a teacher that records another is fed through
:class:`Renormalized`. A model without a record (a fresh one, or one saved by an older
lets_core) takes the statistics of the data's training split, as before.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from .config import LetsConfig
from .data import Splits
from .state_files import unwrapped

# The attribute where a model keeps its InputNorm.
INPUT_NORM_ATTR = "lets_input_norm"


@dataclass(frozen=True)
class InputNorm:
    """Per-channel mean and std, in [0, 1] pixel units (``x = (pixels / 255 - mean) / std``)."""

    mean: tuple[float, ...]
    std: tuple[float, ...]

    def __post_init__(self) -> None:
        for name in ("mean", "std"):
            value = getattr(self, name)
            if isinstance(value, (str, bytes)) or not hasattr(value, "__len__") or len(value) == 0:
                raise ValueError(f"input normalization {name} must be a non-empty sequence of numbers, got {value!r}")
            floats = [_finite_float(v) for v in value]
            if None in floats:
                raise ValueError(f"input normalization {name} must hold finite numbers (real scalars: Python, numpy "
                                 f"or 0-d tensors), got {list(value)!r}")
            object.__setattr__(self, name, tuple(floats))
        if len(self.mean) != len(self.std):
            raise ValueError(f"input normalization has {len(self.mean)} means but {len(self.std)} stds; give one "
                             f"of each per channel")
        if min(self.std) <= 0:
            raise ValueError(f"input normalization std must be positive, got {list(self.std)!r}")
        # The mean of pixels in [0, 1] lies in [0, 1]: one outside it is of another scale (0-255
        # statistics), which would standardize every input 255 times off without an error. The std
        # has no bound to refuse on: fixed conventions such as 0.5 or 1 (no scaling) are legitimate.
        if not all(0 <= m <= 1 for m in self.mean):
            raise ValueError(f"input normalization mean must be in [0, 1] (pixel units: x = (pixels / 255 - mean) / "
                             f"std), got {list(self.mean)!r}; divide statistics of 0-255 pixels by 255")

    @property
    def channels(self) -> int:
        return len(self.mean)

    def check_fits(self, model: nn.Module, what: str) -> None:
        """Refuse to describe a ``model`` that takes another number of channels: timm's transform
        then fails on a grey model (3 values) or silently standardizes all channels of a colour one
        with one channel's statistics (1 value). ``what`` names the caller in the message."""
        in_chans = model_in_chans(model)
        if in_chans is not None and in_chans != self.channels:
            raise ValueError(f"{what}: the input normalization has {self.channels} channels (mean {list(self.mean)!r}) "
                             f"but the model takes {in_chans}; give one mean and one std per input channel")

    @classmethod
    def of(cls, splits: Splits) -> "InputNorm":
        """The normalization ``splits`` feed a model (its training split's statistics, or a model's
        record put there by :func:`normalized_for`)."""
        return cls(splits.mean, splits.std)

    def to_dict(self) -> dict[str, list[float]]:
        return {"mean": list(self.mean), "std": list(self.std)}

    @classmethod
    def from_dict(cls, value: Any, source: str, error: type[ValueError] = ValueError) -> "InputNorm":
        """Read a saved record; ``source`` names the file in the ``error`` a bad one raises (each
        artifact's own: BundleError, CheckpointError)."""
        if not isinstance(value, dict) or not {"mean", "std"} <= set(value):
            raise error(f"{source}: the input normalization must be an object with 'mean' and 'std' lists, "
                        f"got {value!r}")
        try:
            return cls(value["mean"], value["std"])
        except ValueError as exc:
            raise error(f"{source}: {exc}") from None


def record_input_norm(model: nn.Module, norm: InputNorm | None) -> nn.Module:
    """Record (or, with None, forget) the normalization ``model`` expects; returns ``model``.

    A timm model's ``pretrained_cfg`` gets the same mean and std, so that
    ``timm.data.resolve_data_config(model=model)`` builds the right transform (forgetting removes
    them, and timm falls back to its defaults).
    """
    if norm is not None and not isinstance(norm, InputNorm):
        raise TypeError(f"norm must be an InputNorm or None, got {type(norm).__name__}")
    if norm is not None:
        norm.check_fits(model, "record_input_norm")
    inner = unwrapped(model)  # torch.compile's and DDP's wrappers: the record goes on the model itself
    setattr(inner, INPUT_NORM_ATTR, norm)
    cfg = getattr(inner, "pretrained_cfg", None)
    if isinstance(cfg, dict):
        cfg = {k: v for k, v in cfg.items() if k not in ("mean", "std")}
        inner.pretrained_cfg = cfg if norm is None else dict(cfg, mean=norm.mean, std=norm.std)
    return model


def recorded_input_norm(model: nn.Module) -> InputNorm | None:
    """The normalization ``model`` records, or None.

    A model timm loaded from a local folder (``timm.create_model("local-dir:<folder>",
    pretrained=True)``, the way a saved Des-Net loads without lets_core) has no lets_core record;
    the mean and std of the folder's config are its record. Other timm models are not read: a
    freshly built one carries timm's ImageNet defaults, which describe no training of its own.
    """
    inner = unwrapped(model)
    norm = getattr(inner, INPUT_NORM_ATTR, None)
    if norm is not None:
        return norm
    cfg = getattr(inner, "pretrained_cfg", None)
    if isinstance(cfg, dict) and cfg.get("source") == "local-dir" and "mean" in cfg and "std" in cfg:
        return InputNorm.from_dict(cfg, f"the timm config of {cfg.get('file')!r}")
    return None


def model_in_chans(model: nn.Module) -> int | None:
    """The input channels ``model`` takes: its LetsConfig's (an Aux-Net, lets_core's other stage-1
    networks) or else its first convolution's (a timm ViT's patch embedding, a CNN's stem); None
    when neither tells (a model of linear layers)."""
    inner = unwrapped(model)
    cfg = getattr(inner, "cfg", None)
    if isinstance(cfg, LetsConfig):
        return cfg.learngene.in_chans
    conv = next((m for m in inner.modules() if isinstance(m, nn.Conv2d)), None)
    return None if conv is None else conv.in_channels


def _finite_float(value: object) -> float | None:
    """``value`` as a float when it is a finite real number: a Python, numpy or 0-d tensor scalar
    (statistics computed with numpy or torch are those); None otherwise, bools included."""
    if getattr(value, "ndim", None) == 0 and hasattr(value, "item"):  # numpy scalar, 0-d array or tensor
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        return None
    return float(value)


def normalized_for(model: nn.Module, splits: Splits) -> Splits:
    """``splits`` normalized as ``model`` records (unchanged when it records nothing)."""
    norm = recorded_input_norm(model)
    if norm is None:
        return splits
    if norm.channels != splits.in_chans:
        raise ValueError(f"the model records an input normalization for {norm.channels} channels but the data has "
                         f"{splits.in_chans}; load the data with channels={norm.channels}")
    return dataclasses.replace(splits, mean=norm.mean, std=norm.std)


class Renormalized(nn.Module):
    """``model`` fed inputs normalized as ``given`` after converting them to its own ``expected``
    normalization (a per-channel affine map, exact): a teacher trained with other statistics than
    the student's data, whose batches it shares."""

    def __init__(self, model: nn.Module, given: InputNorm, expected: InputNorm) -> None:
        super().__init__()
        if given.channels != expected.channels:
            raise ValueError(f"cannot convert {given.channels}-channel inputs to the {expected.channels} channels the "
                             f"model was trained on")
        self.model = model
        # x_model = (x * std_given + mean_given - mean_expected) / std_expected
        g_mean, g_std, e_mean, e_std = (torch.tensor(v, dtype=torch.float64).view(1, -1, 1, 1)
                                        for v in (given.mean, given.std, expected.mean, expected.std))
        # Persistent: a checkpoint's teacher fingerprint (lets_core.train.origin) then covers the
        # conversion, so a resume that would feed the teacher differently is refused.
        self.register_buffer("scale", (g_std / e_std).float())
        self.register_buffer("shift", ((g_mean - e_mean) / e_std).float())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x * self.scale.to(x.dtype) + self.shift.to(x.dtype))


def fed_as(model: nn.Module, splits: Splits) -> nn.Module:
    """``model`` taking ``splits``' inputs: itself when it records no normalization or the same
    one, else wrapped in :class:`Renormalized`."""
    norm = recorded_input_norm(model)
    given = InputNorm.of(splits)
    return model if norm is None or norm == given else Renormalized(model, given, norm).train(model.training)
