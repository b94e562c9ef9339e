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

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch
from torch import Tensor, nn
from torch.func import functional_call
from timm.models.vision_transformer import VisionTransformer

from ..config import LetsConfig
from ..data import Splits
from ..des import build_des
from ..elastic import SampledSizesConfig, SampledSizesObjective, SizeSampler
from ..errors import DesSizeError
from ..train.config import TrainConfig
from ..train.distributed import DistEnv
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
class NestedConfig(SampledSizesConfig):
    """Settings of nested stage 1: those of :class:`lets_core.elastic.SampledSizesConfig` (the same
    defaults as elastic LeTs's, so both sample the same sizes), the sub-networks being prefixes and
    ``target`` one of :data:`TARGETS`; min_heads may be any number of heads from 1."""

    targets = TARGETS

    def sampler(self, cfg: LetsConfig) -> SizeSampler:
        min_heads = cfg.learngene.num_heads if self.min_heads is None else self.min_heads
        if not 1 <= min_heads <= cfg.aux_heads:
            raise DesSizeError(f"NestedConfig.min_heads={min_heads} must be in [1, {cfg.aux_heads}] (the Aux heads)",
                               fields=("min_heads",))
        return SizeSampler(min_heads, cfg.aux_heads, *self.depth_range(cfg), self.num_random)


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


class NestedObjective(SampledSizesObjective):
    """loss = DistillationLoss(alpha, tau)(full logits) + weight x mean over the sampled sizes of
    KD(prefix logits, target; tau) (:class:`SampledSizesObjective`, whose own target is "full");
    the logits counted for accuracy are the full model's."""

    name = NAME
    own_target = "full"

    def forward_sizes(self, model: nn.Module, x: Tensor,
                      sizes: Sequence[tuple[int, int]]) -> tuple[Tensor, list[Tensor]]:
        return model(x, sizes=sizes)


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
    return build_des(cfg, len(sub.residual), len(sub.plan), clone_state(state), drop_path_rate, source.input_norm)
