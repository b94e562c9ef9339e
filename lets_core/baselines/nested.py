"""Nested ViT (MatFormer-style): one plain ViT of the Aux-Net's shape trained so that its prefix
sub-networks work on their own; a Des-Net is a prefix.

MatFormer (Devvrit et al., 2023) nests only the MLP: a sub-model keeps the first m hidden
neurons of every FFN. HydraViT (2024) nests heads and the embedding: a sub-model keeps the first
k heads and the first k x head_dim residual neurons. A Des-Net here changes all of width (heads,
residual, MLP) and depth, so the prefix of (heads, depth) keeps, in every layer, the first
``heads`` heads (their q, k, v rows and proj columns), the first heads x head_dim residual neurons
(patch embedding rows, pos_embed columns, LayerNorms, fc_norm, the head's columns) and the first
r x width MLP neurons; its layers are those of LeTs's automatic depth plan over the model's
layers (tie_length 1, :func:`subnet.layer_plan`), which MatFormer-style prefixes cannot give.

Stage 1 (:class:`NestedObjective`, run by :func:`lets_core.train.fit`): at every step the full
model is trained with the LeTs stage-1 loss, and the prefixes of a few sizes, sampled with
elastic LeTs's sandwich rule (:class:`lets_core.elastic.SizeSampler`: the smallest size plus
``num_random`` random ones, a function of (seed, epoch, step)), distill from the teacher. This is
the baseline of elastic LeTs: same sampled sizes, same targets, no learngene.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import Tensor, nn
from torch.func import functional_call
from timm.models.vision_transformer import VisionTransformer

from ..config import LetsConfig
from ..data import Splits
from ..des import build_des
from ..elastic import SizeSampler
from ..errors import DesSizeError, LetsConfigError
from ..train.config import TrainConfig
from ..train.distributed import DistEnv
from ..train.losses import DistillationLoss, kd_loss
from ..vit import build_vit, vit_kwargs
from .source import Source, clone_state, detached
from .stage1 import run_stage1
from .subnet import SubNet, check_heads, check_plain_state, layer_plan, prefix_subnet, sub_state

NAME = "nested"
VIT_PREFIX = "vit."
# What the prefixes distill from: the teacher's logits, or the full model's detached logits
# (for runs without a teacher, alpha = 0).
TARGETS = ("teacher", "full")


@dataclass(frozen=True)
class NestedConfig:
    """Settings of nested stage 1.

    num_random: random sizes per step besides the smallest. min_heads, min_depth, max_depth: the
    sampled grid, heads in [min_heads, Aux heads] x depth in [min_depth, max_depth]; None takes
    elastic LeTs's defaults (learngene heads, learngene depth, Aux depth), so both sample the same
    sizes. target: see :data:`TARGETS`. weight: loss = full-model loss + weight x mean prefix KD.
    """

    num_random: int = 1
    min_heads: int | None = None
    min_depth: int | None = None
    max_depth: int | None = None
    target: str = "teacher"
    weight: float = 1.0

    def __post_init__(self) -> None:
        if not _is_int(self.num_random) or self.num_random < 0:
            raise LetsConfigError(f"NestedConfig.num_random must be an integer >= 0, got {self.num_random!r}")
        for name in ("min_heads", "min_depth", "max_depth"):
            value = getattr(self, name)
            if value is not None and (not _is_int(value) or value < 1):
                raise LetsConfigError(f"NestedConfig.{name} must be None or an integer >= 1, got {value!r}")
        if self.target not in TARGETS:
            raise LetsConfigError(f"NestedConfig.target must be one of {list(TARGETS)}, got {self.target!r}")
        w = self.weight
        if isinstance(w, bool) or not isinstance(w, (int, float)) or not (math.isfinite(w) and w > 0):
            raise LetsConfigError(f"NestedConfig.weight must be a finite number > 0, got {w!r}")

    def sampler(self, cfg: LetsConfig) -> SizeSampler:
        lg = cfg.learngene
        min_heads = lg.num_heads if self.min_heads is None else self.min_heads
        if not 1 <= min_heads <= cfg.aux_heads:
            raise DesSizeError(f"NestedConfig.min_heads={min_heads} must be in [1, {cfg.aux_heads}] (the Aux heads)")
        min_depth = lg.depth if self.min_depth is None else self.min_depth
        max_depth = cfg.aux_depth if self.max_depth is None else self.max_depth
        if min_depth > max_depth:
            raise DesSizeError(f"NestedConfig depths give an empty range: min_depth {min_depth} > max_depth "
                               f"{max_depth}")
        return SizeSampler(min_heads, cfg.aux_heads, min_depth, max_depth, self.num_random)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class NestedViT(nn.Module):
    """A plain timm ViT of the Aux-Net's shape (``.vit``) that also runs its prefixes.

    ``model(x)`` is the full model's logits; ``model(x, sizes=[(heads, depth), ...])`` returns
    ``(logits, [prefix logits per size])``, the prefixes gathered with gradient from the same
    parameters (through the module call, so DDP sees one forward).
    """

    def __init__(self, cfg: LetsConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.vit = build_vit(cfg.learngene, cfg.aux_embed_dim, cfg.aux_depth, cfg.drop_path_rate)
        self._skeletons: dict[tuple[int, int], VisionTransformer] = {}  # plain dict: not submodules

    def forward(self, x: Tensor,
                sizes: Sequence[tuple[int, int]] | None = None) -> Tensor | tuple[Tensor, list[Tensor]]:
        logits = self.vit(x)
        if sizes is None:
            return logits
        full = dict(self.vit.named_parameters())
        subs = [functional_call(self._skeleton(h, d), sub_state(self.cfg, full, prefix(self.cfg, h, d, x.device)),
                                (x,)) for h, d in sizes]
        return logits, subs

    def _skeleton(self, heads: int, depth: int) -> VisionTransformer:
        skeleton = self._skeletons.get((heads, depth))
        if skeleton is None:
            kwargs = vit_kwargs(self.cfg.learngene, heads * self.cfg.learngene.head_dim, depth, self.cfg.drop_path_rate)
            skeleton = VisionTransformer(**kwargs, weight_init="skip", device="meta")
            self._skeletons[(heads, depth)] = skeleton
        return skeleton.train(self.training)

    def no_weight_decay(self) -> set[str]:
        return {VIT_PREFIX + "pos_embed"}  # spared as in the LeTs recipe; the prefix hides the name


def prefix(cfg: LetsConfig, heads: int, depth: int, device: torch.device | None = None) -> SubNet:
    """The (heads, depth) prefix of the Aux-shaped ViT (see the module doc)."""
    return prefix_subnet(cfg, check_heads(cfg, heads, "the nested ViT"), layer_plan(cfg, depth), device)


class NestedObjective:
    """loss = DistillationLoss(alpha, tau)(full logits) + weight x mean over the sampled sizes of
    KD(prefix logits, target; tau); the logits counted for accuracy are the full model's."""

    def __init__(self, config: NestedConfig, cfg: LetsConfig, train_cfg: TrainConfig) -> None:
        self.config = config
        self.sampler = config.sampler(cfg)
        self.seed = train_cfg.seed
        self.criterion = DistillationLoss(train_cfg.alpha, train_cfg.tau, train_cfg.label_smoothing)

    @property
    def teacher_reason(self) -> str | None:
        if self.config.target == "teacher":
            return "nested target 'teacher'"
        return f"alpha={self.criterion.alpha}" if self.criterion.needs_teacher else None

    def settings(self) -> dict[str, Any]:
        return {"objective": NAME, **self.config.to_dict()}

    def __call__(self, model: nn.Module, x: Tensor, y: Tensor, teacher_logits: Tensor | None, epoch: int,
                 step: int) -> tuple[Tensor, Tensor]:
        sizes = self.sampler.sizes(self.seed, epoch, step)
        logits, subs = model(x, sizes=sizes)
        target = teacher_logits if self.config.target == "teacher" else logits.detach()
        if target is None:
            raise ValueError("nested target 'teacher' needs teacher logits; pass a teacher or use target='full'")
        sub_loss = torch.stack([kd_loss(s, target, self.criterion.tau) for s in subs]).mean()
        return self.criterion(logits, y, teacher_logits) + self.config.weight * sub_loss, logits


def check_size(cfg: LetsConfig, heads: int, depth: int) -> None:
    """Any heads in [1, Aux heads] and depth >= 1; stage 1 trains the sampled grid only."""
    prefix(cfg, heads, depth)


def train_stage1(splits: Splits, teacher: nn.Module | None, cfg: LetsConfig, train_cfg: TrainConfig,
                 out_dir: str | Path | None = None, resume: bool = False, *, env: DistEnv | None = None,
                 sizes: Sequence[tuple[int, int]] | None = None, config: NestedConfig | None = None) -> Source:
    """Train the nested ViT (:class:`NestedObjective`); its plain ViT's weights are the source."""
    config = config or NestedConfig()
    objective = NestedObjective(config, cfg, train_cfg)  # first, so a bad size grid fails before training
    torch.manual_seed(train_cfg.seed)
    model = NestedViT(cfg)
    return run_stage1(NAME, model, lambda m: detached(m.state_dict(), VIT_PREFIX), splits, teacher, cfg, train_cfg,
                      out_dir, resume, env, settings={"nested": config.to_dict()}, objective=objective)


def emit(source: Source, heads: int, depth: int, *, drop_path_rate: float = 0.0) -> VisionTransformer:
    """The (heads, depth) prefix of the trained model as a plain timm ViT."""
    cfg = source.cfg
    check_plain_state(cfg, source.state, "nested")
    sub = prefix(cfg, heads, depth)
    with torch.no_grad():
        state = sub_state(cfg, source.state, sub)
    return build_des(cfg, len(sub.residual), len(sub.plan), clone_state(state), drop_path_rate)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
