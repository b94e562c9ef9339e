"""What one training step minimizes: the hook between :func:`lets_core.train.fit` and the loss.

An objective turns one batch into ``(loss, logits)``: the loss to back-propagate and the logits the
loop counts top-1 accuracy on. :class:`DistillationObjective` is every stage's default (the
paper's loss on the model's own logits); :class:`lets_core.elastic.ElasticObjective` also trains
sampled Des-Nets. An objective's :meth:`Objective.settings` go into the checkpoint, and a resume
with different settings is refused, as a changed TrainConfig is.
"""

from __future__ import annotations

from typing import Any, Protocol

from torch import Tensor, nn

from .losses import DistillationLoss


class Objective(Protocol):
    """One training step's loss."""

    @property
    def teacher_reason(self) -> str | None:
        """None when the objective uses no teacher logits; otherwise the setting that needs them
        (for the error raised when no teacher is given), e.g. ``"alpha=0.5"``."""
        ...

    def settings(self) -> dict[str, Any] | None:
        """What the objective adds to the TrainConfig (plain JSON types), or None for nothing. A
        resume with other settings is refused, unless the objective has a ``same_run(saved)``
        method that says the checkpoint's settings train the same way."""
        ...

    def __call__(self, model: nn.Module, x: Tensor, y: Tensor, teacher_logits: Tensor | None, epoch: int,
                 step: int) -> tuple[Tensor, Tensor]:
        """``(loss, logits)`` of one batch; ``teacher_logits`` is None unless a teacher is used."""
        ...


# The TrainConfig fields an objective may build its loss from. An objective built from its own
# TrainConfig says which values it took in a ``train_settings`` dict; fit refuses one that
# disagrees with fit's TrainConfig, which is the one recorded (checkpoint, bundle) and resumed.
LOSS_FIELDS = ("seed", "alpha", "tau", "label_smoothing")


def train_config_conflict(objective: object, cfg: Any) -> str | None:
    """None when ``objective`` took no TrainConfig values (``train_settings`` absent or None) or
    took those of ``cfg``; otherwise a text naming each field that differs."""
    taken = getattr(objective, "train_settings", None)
    if taken is None:
        return None
    differ = [f"{k}: objective {v!r} vs fit {getattr(cfg, k)!r}" for k, v in taken.items() if v != getattr(cfg, k)]
    return ", ".join(differ) or None


class DistillationObjective:
    """The default: ``criterion(model(x), y, teacher_logits)``, (1 − α)·CE + α·KD.

    Example:
        >>> import torch
        >>> from lets_core.train import DistillationLoss
        >>> objective = DistillationObjective(DistillationLoss(alpha=0.0))
        >>> loss, logits = objective(torch.nn.Linear(4, 3), torch.randn(2, 4), torch.tensor([0, 2]), None, 0, 0)
        >>> objective.teacher_reason is None, logits.shape
        (True, torch.Size([2, 3]))
    """

    def __init__(self, criterion: DistillationLoss) -> None:
        self.criterion = criterion

    @property
    def teacher_reason(self) -> str | None:
        return f"alpha={self.criterion.alpha}" if self.criterion.needs_teacher else None

    def settings(self) -> dict[str, Any] | None:
        return None  # alpha, tau and label smoothing are TrainConfig fields, recorded with it

    def __call__(self, model: nn.Module, x: Tensor, y: Tensor, teacher_logits: Tensor | None, epoch: int,
                 step: int) -> tuple[Tensor, Tensor]:
        logits = model(x)
        return self.criterion(logits, y, teacher_logits), logits


def settings_change(saved: dict[str, Any] | None, now: dict[str, Any] | None) -> str | None:
    """None when two objectives' settings agree; otherwise a text naming both values."""
    if saved == now:
        return None
    if isinstance(saved, dict) and isinstance(now, dict):
        keys = sorted(set(saved) | set(now))
        return ", ".join(f"{k}: checkpoint {saved.get(k)!r} vs now {now.get(k)!r}" for k in keys
                         if saved.get(k) != now.get(k))
    return f"checkpoint {_describe(saved)} vs now {_describe(now)}"


def _describe(settings: dict[str, Any] | None) -> str:
    return "the default objective (no settings)" if settings is None else repr(settings)
