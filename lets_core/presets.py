"""Ready-made configurations."""

from __future__ import annotations

import dataclasses

from .config import LearngeneConfig, LetsConfig, TransformConfig
from .errors import LetsConfigError


def paper(num_classes: int = 1000) -> LetsConfig:
    """The authors' released configuration: 8-block ViT-S learngene grown to a 16-block ViT-B Aux-Net."""
    return LetsConfig(
        learngene=LearngeneConfig(
            img_size=224, patch_size=16, in_chans=3, num_classes=num_classes,
            embed_dim=384, depth=8, head_dim=64, mlp_ratio=4.0,
        ),
        aux_embed_dim=768,
        aux_depth=16,
        transform=TransformConfig(group_size=2, tie_length=2),
    )


def tiny(num_classes: int = 10) -> LetsConfig:
    """A small configuration for tests and CPU demos (28 px grey images such as Fashion-MNIST).

    Learngene: 4 blocks of width 32 (2 heads of 16); Aux-Net: 8 blocks of width 64 (4 heads).
    """
    return LetsConfig(
        learngene=LearngeneConfig(
            img_size=28, patch_size=7, in_chans=1, num_classes=num_classes,
            embed_dim=32, depth=4, head_dim=16, mlp_ratio=2.0,
        ),
        aux_embed_dim=64,
        aux_depth=8,
        transform=TransformConfig(group_size=2, tie_length=2),
    )


def ligo(cfg: LetsConfig) -> LetsConfig:
    """The paper's ordering ablation LeTs(LiGO) of ``cfg``: the same learngene, Aux-Net, tie_length
    and inits, with the "ligo" layout (depth mix over all learngene blocks first, then one width
    expansion per distinct Aux layer; see :class:`TransformConfig`), hence group_size = the
    learngene depth.

    >>> cfg = ligo(paper())
    >>> cfg.transform.layout, cfg.transform.group_size, cfg.num_f_sets
    ('ligo', 8, 8)
    """
    if not isinstance(cfg, LetsConfig):
        raise LetsConfigError(f"ligo takes a LetsConfig (LetsConfig.from_dict reads dicts), got {type(cfg).__name__}")
    transform = dataclasses.replace(cfg.transform, layout="ligo", group_size=cfg.learngene.depth)
    return dataclasses.replace(cfg, transform=transform)
