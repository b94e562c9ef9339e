"""Scratch: timm's random initialization at the Des-Net's size (nothing trained in stage 1)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from torch import nn
from timm.models.vision_transformer import VisionTransformer

from ..config import LetsConfig
from ..data import Splits
from ..des import des_param_count
from ..train.config import TrainConfig
from ..train.distributed import DistEnv, barrier
from ..train.stages import scratch_des
from .source import Source, save_source
from .stage1 import SOURCE_DIR

NAME = "scratch"


def check_size(cfg: LetsConfig, heads: int, depth: int) -> None:
    """The sizes LeTs emits (``scratch_des``'s range)."""
    des_param_count(cfg, heads, depth)


def train_stage1(splits: Splits, teacher: nn.Module | None, cfg: LetsConfig, train_cfg: TrainConfig,
                 out_dir: str | Path | None = None, resume: bool = False, *, env: DistEnv | None = None,
                 sizes: Sequence[tuple[int, int]] | None = None) -> Source:
    """Nothing to train: the source only records the seed of the random initialization."""
    env = env or DistEnv()
    source = Source(NAME, cfg, {}, {"seed": train_cfg.seed})
    if out_dir is not None and env.is_main:
        save_source(source, Path(out_dir) / SOURCE_DIR)
    barrier(env)
    return source


def emit(source: Source, heads: int, depth: int, *, drop_path_rate: float = 0.0) -> VisionTransformer:
    """A (heads, depth) ViT with timm's random initialization, seeded by the source's seed."""
    return scratch_des(source.cfg, heads, depth, drop_path_rate=drop_path_rate, seed=source.settings.get("seed", 0))
