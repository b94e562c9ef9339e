"""AdamW with weight-decay groups, linear learning-rate scaling, and a warm-up + cosine schedule."""

from __future__ import annotations

import math
from typing import Mapping

import torch
from torch import nn


def decays(name: str, param: torch.Tensor, extra_no_decay: set[str]) -> bool:
    """Whether ``name`` gets weight decay: not when it is a 0-/1-D tensor (biases, norms) or the
    model's ``no_weight_decay()`` names it (``extra_no_decay``), the rule timm's optimizer factory
    applies too.

    The model declares its own exemptions, so that this loop and timm's ``create_optimizer_v2``
    spare the same parameters: an :class:`lets_core.AuxNet` names its position embeddings, F, G
    and the learngene's stacked norms and biases (2-D only because blocks are stacked), as the
    LeTs recipe says; a timm ViT names its position embedding.
    """
    return not (name in extra_no_decay or param.ndim <= 1)


def param_groups(model: nn.Module, weight_decay: float,
                 lr_scales: Mapping[str, float] | None = None) -> list[dict]:
    """AdamW groups of the trainable parameters: decayed or spared (:func:`decays`), and by lr scale.

    ``lr_scales`` maps a parameter-name prefix (e.g. ``"width."`` for an Aux-Net's F) to a
    multiplier of the learning rate; a group's ``lr_scale`` survives in its ``lr`` because the
    schedulers here multiply each group's own initial lr. Parameters matching no prefix keep 1.
    """
    extra = set(model.no_weight_decay()) if hasattr(model, "no_weight_decay") else set()
    scales = dict(lr_scales or {})
    groups: dict[tuple[bool, float], list[nn.Parameter]] = {}
    for name, p in model.named_parameters():
        if p.requires_grad:
            scale = next((v for prefix, v in scales.items() if name.startswith(prefix)), 1.0)
            groups.setdefault((decays(name, p, extra), scale), []).append(p)
    # Decayed weights first at scale 1: the first group's lr is the one logs report.
    order = sorted(groups, key=lambda k: (not k[0], k[1] != 1.0, k[1]))
    if not order:
        return [{"params": [], "weight_decay": weight_decay, "lr_scale": 1.0}]
    return [{"params": groups[k], "weight_decay": weight_decay if k[0] else 0.0, "lr_scale": k[1]} for k in order]


def scaled_lr(lr: float, global_batch: int, base_batch: int) -> float:
    """Linear scaling rule: ``lr`` is quoted for ``base_batch`` images per step."""
    return lr * global_batch / base_batch


def build_optimizer(model: nn.Module, lr: float, weight_decay: float,
                    lr_scales: Mapping[str, float] | None = None) -> torch.optim.AdamW:
    """AdamW over :func:`param_groups`; each group's lr is ``lr`` times its ``lr_scale``."""
    groups = param_groups(model, weight_decay, lr_scales)
    for group in groups:
        group["lr"] = lr * group["lr_scale"]
    return torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.999))


def warmup_cosine(optimizer: torch.optim.Optimizer, total_steps: int, warmup_steps: int,
                  min_lr_ratio: float = 0.01) -> torch.optim.lr_scheduler.LambdaLR:
    """Per-step schedule: linear warm-up to the peak lr, then cosine down to ``min_lr_ratio`` × peak."""
    if total_steps < 1:
        raise ValueError(f"the schedule needs at least one step, got total_steps={total_steps}")
    warmup_steps = min(max(0, warmup_steps), total_steps - 1)

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / (warmup_steps + 1)
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return min_lr_ratio + (1 - min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
