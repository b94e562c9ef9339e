"""SWS: Stage-wise Weight Sharing (Xia et al., IJCAI 2024, "Exploring Learngene via Stage-wise
Weight Sharing for Initializing Variable-sized Models").

Stage 1 trains an auxiliary network whose layers are split into consecutive stages; all layers of
a stage share one set of block weights (the paper's 16-layer Aux-Net: stages of [3, 3, 4, 3, 3]
layers), by soft distillation from the teacher (the LeTs stage-1 loss and recipe). The learngene
is the stages' layers. A Des-Net of depth L' keeps the stage order and repeats each stage's layer
for that stage's share of L' layers ("we expand these learngene layers containing stage
information at their corresponding stage to initialize models of variable depths", paper
abstract; Fig. 2: the number of stages and of layers per stage are configurable).

Two rules here are ours, because the paper fixes them only for its own sizes (stated so that
nobody mistakes them for the paper's):

- :func:`default_split`: S stages (default 5) over the Aux depth, the same number of layers each,
  the remainder to the middle stages first. For 16 layers this is the paper's [3, 3, 4, 3, 3].
- :func:`des_stage_counts`: with L' >= S, stage s gets its proportional share L'·n_s/L rounded
  so that the counts sum to L' (every stage at least 1; the largest remainders first, ties to the
  middle stages); with L' < S, L' stages evenly spaced, first and last kept (LeTs's depth-plan
  rule), one layer each. At L' = L it gives the Aux-Net's own split.

Like TLEG, SWS varies depth only; its learngene has the Aux-Net's width (see tleg.py).
"""

from __future__ import annotations

from fractions import Fraction
from math import floor
from pathlib import Path
from typing import Sequence

import torch
from torch import Tensor, nn
from timm.models.vision_transformer import VisionTransformer

from ..config import LetsConfig
from ..data import Splits
from ..des import build_des
from ..errors import LetsConfigError
from ..train.config import TrainConfig
from ..train.distributed import DistEnv
from .generated import STEM_PREFIX, GeneratedViT, block_tensors, check_depth_only_size, new_block
from .source import Source, clone_state, detached
from .stage1 import run_stage1

NAME = "sws"
DEFAULT_STAGES = 5
STAGES_PREFIX = "stages."


def middle_first(n: int) -> list[int]:
    """0..n-1 ordered from the middle outwards (ties: the earlier one), as LeTs's depth plan."""
    center = (n - 1) / 2
    return sorted(range(n), key=lambda s: (abs(s - center), s))


def default_split(depth: int, num_stages: int = DEFAULT_STAGES) -> list[int]:
    """Layers per stage: ``min(num_stages, depth)`` stages as equal as possible, extra layers to the
    middle stages first. ``default_split(16) == [3, 3, 4, 3, 3]`` (the paper's)."""
    if depth < 1 or num_stages < 1:
        raise LetsConfigError(f"an SWS split needs depth >= 1 and num_stages >= 1, got {depth} and {num_stages}")
    stages = min(num_stages, depth)
    counts = [depth // stages] * stages
    for s in middle_first(stages)[: depth % stages]:
        counts[s] += 1
    return counts


def check_split(split: Sequence[int], depth: int) -> list[int]:
    split = list(split)
    if not split or any(isinstance(n, bool) or not isinstance(n, int) or n < 1 for n in split) or sum(split) != depth:
        raise LetsConfigError(f"an SWS split must be positive integers summing to the Aux depth {depth}, got {split}")
    return split


def stage_plan(split: Sequence[int]) -> list[int]:
    """The stage of each layer: ``[0]*split[0] + [1]*split[1] + ...``."""
    return [s for s, n in enumerate(split) for _ in range(n)]


def evenly_spaced(n: int, k: int) -> list[int]:
    """k of 0..n-1, evenly spaced, first and last included (LeTs's depth-plan rule for fewer layers)."""
    if k == 1:
        return [0]
    return [(2 * i * (n - 1) + (k - 1)) // (2 * (k - 1)) for i in range(k)]


def des_stage_counts(split: Sequence[int], depth: int) -> list[int]:
    """How many Des layers each stage gets for a Des-Net of ``depth`` layers (see the module doc)."""
    stages, total = len(split), sum(split)
    if depth < stages:
        chosen = set(evenly_spaced(stages, depth))
        return [1 if s in chosen else 0 for s in range(stages)]
    quota = [Fraction(depth * n, total) for n in split]
    counts = [max(1, floor(q)) for q in quota]
    rank = {s: r for r, s in enumerate(middle_first(stages))}
    while sum(counts) < depth:  # the stage furthest below its share; ties: middle first
        s = max(range(stages), key=lambda s: (quota[s] - counts[s], -rank[s]))
        counts[s] += 1
    while sum(counts) > depth:  # only after raising stages to 1: take from the one most above its share
        s = max((s for s in range(stages) if counts[s] > 1), key=lambda s: (counts[s] - quota[s], rank[s]))
        counts[s] -= 1
    return counts


class SwsNet(GeneratedViT):
    """SWS's auxiliary network: one timm Block per stage, applied to each of the stage's layers."""

    def __init__(self, cfg: LetsConfig, split: Sequence[int] | None = None) -> None:
        super().__init__(cfg)
        self.split = check_split(default_split(cfg.aux_depth) if split is None else split, cfg.aux_depth)
        self.stages = nn.ModuleList(new_block(cfg) for _ in self.split)

    def block_states(self) -> list[dict[str, Tensor]]:
        per_stage = [block_tensors(b) for b in self.stages]
        return [per_stage[s] for s in stage_plan(self.split)]


def check_size(cfg: LetsConfig, heads: int, depth: int) -> None:
    """SWS makes any depth >= 1 at the Aux-Net's width only."""
    check_depth_only_size(cfg, heads, depth, "SWS")


def train_stage1(splits: Splits, teacher: nn.Module | None, cfg: LetsConfig, train_cfg: TrainConfig,
                 out_dir: str | Path | None = None, resume: bool = False, *, env: DistEnv | None = None,
                 sizes: Sequence[tuple[int, int]] | None = None, split: Sequence[int] | None = None,
                 num_stages: int = DEFAULT_STAGES) -> Source:
    """Train SWS's auxiliary network by distillation; ``split`` (layers per stage) defaults to
    ``default_split(cfg.aux_depth, num_stages)``."""
    split = check_split(default_split(cfg.aux_depth, num_stages) if split is None else split, cfg.aux_depth)
    torch.manual_seed(train_cfg.seed)
    model = SwsNet(cfg, split)
    return run_stage1(NAME, model, lambda m: detached(m.state_dict()), splits, teacher, cfg, train_cfg, out_dir,
                      resume, env, settings={"split": split})


def emit(source: Source, heads: int, depth: int, *, drop_path_rate: float = 0.0) -> VisionTransformer:
    """A Des-Net of ``depth`` layers: stage s's trained layer repeated ``des_stage_counts(...)[s]`` times."""
    cfg = source.cfg
    check_size(cfg, heads, depth)
    depth = int(depth)
    split = check_split(source.settings["split"], cfg.aux_depth)
    state = detached(source.state, STEM_PREFIX)
    plan = stage_plan(des_stage_counts(split, depth))
    for i, s in enumerate(plan):
        state.update({f"blocks.{i}.{k}": v for k, v in detached(source.state, f"{STAGES_PREFIX}{s}.").items()})
    return build_des(cfg, cfg.aux_embed_dim, depth, clone_state(state), drop_path_rate, source.input_norm)
