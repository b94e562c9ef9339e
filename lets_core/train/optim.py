"""AdamW with weight-decay groups, linear learning-rate scaling, and a warm-up + cosine schedule."""

from __future__ import annotations

import math

import torch
from torch import nn

# Aux-Net parameters spared from weight decay, by name prefix / name (see param_groups).
_AUX_NO_DECAY_PREFIXES = ("depth.", "width.", "pos_embed", "learngene.pos_embed")
_LEARNGENE_NO_DECAY = ("norm1_w", "norm1_b", "norm2_w", "norm2_b", "qkv_b", "proj_b", "fc1_b", "fc2_b",
                       "patch_b", "fc_norm_w", "fc_norm_b", "head_b")


def decays(name: str, param: torch.Tensor, extra_no_decay: set[str]) -> bool:
    """Whether ``name`` gets weight decay.

    Spared: biases and normalization parameters (any 0-/1-D tensor, and the learngene's stacked
    norms and biases, which are 2-D only because blocks are stacked), position embeddings, and
    the G coefficients, as the LeTs recipe says.

    F is spared too. A new neuron's weights are F·W; W (the learngene) is already decayed, so
    decaying F as well would pull every new neuron toward zero a second time, and F's rows are
    mixing coefficients (initialized to sum to 1) whose scale has no reason to shrink, like G's.
    """
    if name in extra_no_decay or param.ndim <= 1:
        return False
    if name.startswith(_AUX_NO_DECAY_PREFIXES):
        return False
    if name.startswith("learngene.") and name.rsplit(".", 1)[-1] in _LEARNGENE_NO_DECAY:
        return False
    return True


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Two AdamW groups: decayed weights and everything :func:`decays` spares (trainable only)."""
    extra = set(model.no_weight_decay()) if hasattr(model, "no_weight_decay") else set()
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if p.requires_grad:
            (decay if decays(name, p, extra) else no_decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def scaled_lr(lr: float, global_batch: int, base_batch: int) -> float:
    """Linear scaling rule: ``lr`` is quoted for ``base_batch`` images per step."""
    return lr * global_batch / base_batch


def build_optimizer(model: nn.Module, lr: float, weight_decay: float) -> torch.optim.AdamW:
    return torch.optim.AdamW(param_groups(model, weight_decay), lr=lr, betas=(0.9, 0.999))


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
