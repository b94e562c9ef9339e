"""The training recipe as one validated dataclass, shared by every stage and by the CLI flags."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from ..config import dataclass_from_dict, finite_number

AMP_MODES = ("auto", "bf16", "fp16", "off")
# Fields that do not change the numbers a run produces, so a resume may change them.
RUNTIME_ONLY = ("progress", "num_workers", "eval_batch_size")


# torch.manual_seed takes 64-bit seeds; larger ones fail as "Overflow when unpacking long long".
MAX_SEED = 2**63 - 1


@dataclass
class TrainConfig:
    """How to train one model.

    lr is quoted for ``lr_base_batch`` images per step and scaled linearly to ``batch_size`` (the
    global batch over all processes). The schedule is per step: linear warm-up for
    ``warmup_epochs`` then cosine to ``min_lr_ratio`` × peak. ``alpha`` and ``tau`` set the
    distillation loss (1 − α)·CE + α·KD·τ²; α = 0 trains on labels alone and needs no teacher.
    ``f_lr_scale`` and ``g_lr_scale`` multiply the lr of an Aux-Net's F matrices and G
    coefficients (they do nothing for other models): F entries and G coefficients live on other
    scales than ordinary weights, so Adam's normalized step moves them by a different relative amount.
    """

    epochs: int = 10
    batch_size: int = 128
    lr: float = 5e-4
    lr_base_batch: int = 512
    min_lr_ratio: float = 0.01
    warmup_epochs: float = 1.0
    weight_decay: float = 0.05
    f_lr_scale: float = 1.0
    g_lr_scale: float = 1.0
    clip_grad: float | None = None
    alpha: float = 0.0
    tau: float = 1.0
    label_smoothing: float = 0.0
    amp: str = "auto"
    augment: bool = True
    seed: int = 0
    eval_batch_size: int = 256
    num_workers: int | None = None
    progress: bool = True

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "lr_base_batch", "eval_batch_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"TrainConfig.{name} must be a positive integer, got {value!r}")
        for name in ("lr", "tau", "f_lr_scale", "g_lr_scale"):
            if not finite_number(getattr(self, name)) or not getattr(self, name) > 0:
                raise ValueError(f"TrainConfig.{name} must be a finite number > 0, got {getattr(self, name)!r}")
        for name in ("weight_decay", "warmup_epochs"):
            if not finite_number(getattr(self, name)) or getattr(self, name) < 0:
                raise ValueError(f"TrainConfig.{name} must be a finite number >= 0, got {getattr(self, name)!r}")
        if not (finite_number(self.min_lr_ratio) and 0 <= self.min_lr_ratio <= 1):
            raise ValueError(f"TrainConfig.min_lr_ratio must be in [0, 1], got {self.min_lr_ratio!r}")
        if not (finite_number(self.alpha) and 0 <= self.alpha <= 1):
            raise ValueError(f"TrainConfig.alpha must be in [0, 1], got {self.alpha!r}")
        # Below 1: label smoothing 1 spreads every target uniformly and leaves nothing to learn.
        if not (finite_number(self.label_smoothing) and 0 <= self.label_smoothing < 1):
            raise ValueError(f"TrainConfig.label_smoothing must be in [0, 1), got {self.label_smoothing!r}")
        if not isinstance(self.seed, int) or isinstance(self.seed, bool) or not 0 <= self.seed <= MAX_SEED:
            raise ValueError(f"TrainConfig.seed must be an integer in [0, 2**63 - 1], got {self.seed!r}")
        if self.num_workers is not None and (not isinstance(self.num_workers, int) or isinstance(self.num_workers, bool)
                                             or self.num_workers < 0):
            raise ValueError(f"TrainConfig.num_workers must be None or an integer >= 0, got {self.num_workers!r}")
        for name in ("augment", "progress"):
            # Strictly bool: a string "false" from a config file is truthy.
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"TrainConfig.{name} must be True or False, got {getattr(self, name)!r}")
        if self.clip_grad is not None and not (finite_number(self.clip_grad) and self.clip_grad > 0):
            raise ValueError(f"TrainConfig.clip_grad must be a finite number > 0 or None, got {self.clip_grad!r}")
        if self.amp not in AMP_MODES:
            raise ValueError(f"TrainConfig.amp must be one of {list(AMP_MODES)}, got {self.amp!r}")

    def lr_scales(self) -> dict[str, float]:
        """Parameter-name prefix -> lr multiplier (an Aux-Net's ``width.`` = F, ``depth.`` = G)."""
        return {"width.": self.f_lr_scale, "depth.": self.g_lr_scale}

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrainConfig":
        return dataclass_from_dict(cls, data, "TrainConfig")

    def differences(self, other: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
        """Fields (other than runtime-only ones) whose values differ from ``other``'s."""
        mine = self.to_dict()
        return {k: (other.get(k), v) for k, v in mine.items() if k not in RUNTIME_ONLY and other.get(k) != v}

