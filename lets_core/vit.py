"""The timm `VisionTransformer` that every LeTs network runs as.

The learngene, the Aux-Net and every Des-Net are the same timm architecture at different widths
and depths; keeping the keyword arguments in one place is what lets an emitted Des-Net load in
timm without lets_core.
"""

from __future__ import annotations

import math
import numbers
import operator
from typing import Any

import torch
from timm.models.vision_transformer import VisionTransformer

from .config import LearngeneConfig


def check_drop_path_rate(rate: object) -> float:
    """A stochastic-depth rate as a plain float in [0, 1): timm takes any number without a check
    (a negative rate silently turns drop-path off, one above 1 fails at the first training step)
    and the rate is written into a Des-Net's config.json, which holds no NaN or numpy scalar."""
    if isinstance(rate, bool) or not isinstance(rate, numbers.Real) or not math.isfinite(rate) or not 0 <= rate < 1:
        raise ValueError(f"drop_path_rate must be a number in [0, 1), got {rate!r}")
    return float(rate)


def vit_kwargs(lg: LearngeneConfig, width: int, depth: int, drop_path_rate: float = 0.0) -> dict[str, Any]:
    """Exact `VisionTransformer` keyword arguments for a network of ``width`` x ``depth``.

    Only JSON-serializable values, since they are written verbatim into a Des-Net's config.json.
    """
    # Plain ints (numpy integers pass as sizes elsewhere): timm's drop-path schedule and config.json need them.
    width, depth = operator.index(width), operator.index(depth)
    return dict(
        img_size=lg.img_size,
        patch_size=lg.patch_size,
        in_chans=lg.in_chans,
        num_classes=lg.num_classes,
        global_pool="avg",
        embed_dim=width,
        depth=depth,
        num_heads=width // lg.head_dim,
        mlp_ratio=lg.mlp_ratio,
        qkv_bias=True,
        class_token=False,
        fc_norm=True,
        drop_path_rate=check_drop_path_rate(drop_path_rate),
    )


def build_vit(lg: LearngeneConfig, width: int, depth: int, drop_path_rate: float = 0.0,
              device: torch.device | str | None = None) -> VisionTransformer:
    """A timm ViT of the given size, randomly initialized by timm (on ``device``; "meta" builds a skeleton)."""
    return VisionTransformer(**vit_kwargs(lg, width, depth, drop_path_rate), device=device)
