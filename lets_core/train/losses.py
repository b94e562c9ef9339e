"""Training losses: cross-entropy and the soft distillation loss of LeTs stage 1."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn


def kd_loss(student_logits: Tensor, teacher_logits: Tensor, tau: float = 1.0) -> Tensor:
    """KL(softmax(t/τ) ‖ softmax(s/τ)) · τ², averaged over the batch.

    The τ² factor keeps the gradient's scale independent of τ (Hinton et al.), so α mixes two
    terms of comparable size whatever the temperature.
    """
    log_p_s = F.log_softmax(student_logits.float() / tau, dim=-1)
    log_p_t = F.log_softmax(teacher_logits.float() / tau, dim=-1)
    return F.kl_div(log_p_s, log_p_t, reduction="batchmean", log_target=True) * (tau * tau)


class DistillationLoss(nn.Module):
    """(1 − α)·CE(student, labels) + α·KD(student, teacher; τ).

    α = 1 (the paper's default) is pure distillation; α = 0 is plain cross-entropy, the
    no-distillation ablation, and needs no teacher logits.
    """

    def __init__(self, alpha: float = 1.0, tau: float = 1.0, label_smoothing: float = 0.0) -> None:
        super().__init__()
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"distillation alpha must be in [0, 1], got {alpha!r}")
        if not tau > 0:
            raise ValueError(f"distillation temperature tau must be > 0, got {tau!r}")
        if not 0.0 <= label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing!r}")
        self.alpha, self.tau, self.label_smoothing = alpha, tau, label_smoothing

    @property
    def needs_teacher(self) -> bool:
        return self.alpha > 0

    def forward(self, student_logits: Tensor, labels: Tensor, teacher_logits: Tensor | None = None) -> Tensor:
        ce = None
        if self.alpha < 1:
            ce = F.cross_entropy(student_logits.float(), labels, label_smoothing=self.label_smoothing)
            if self.alpha == 0:
                return ce
        if teacher_logits is None:
            raise ValueError(f"alpha={self.alpha} needs teacher logits; pass a teacher or set alpha=0")
        kd = kd_loss(student_logits, teacher_logits, self.tau)
        return kd if ce is None else (1 - self.alpha) * ce + self.alpha * kd
