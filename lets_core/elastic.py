"""Elastic stage 1: train sampled Des-Nets beside the Aux-Net, from the same generated weights.

Beyond the paper (lets-method.md, "Beyond the paper: elastic stage 1"). At every optimizer step
the Aux weights are generated once; besides the Aux-Net, the Des-Nets of a few sampled sizes are
gathered from them with gradient (``AuxNet.forward(x, des_sizes=...)``, the same selection and
depth plan as :func:`lets_core.emit_des`) and trained by distillation toward the teacher, the
Aux-Net's own detached logits, or both. Sizes follow the sandwich rule: always the smallest size,
plus ``num_random`` uniform draws from the grid of (heads, depth), from a generator seeded by
(seed, epoch, step), so a resumed run draws the same sizes without saving generator state.

Example:
    >>> import lets_core
    >>> from lets_core.elastic import ElasticConfig
    >>> sampler = ElasticConfig(num_random=2).sampler(lets_core.presets.tiny())
    >>> sizes = sampler.sizes(seed=0, epoch=0, step=0)
    >>> len(sizes), sizes[0]
    (3, (2, 4))
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from .config import LetsConfig
from .errors import DesSizeError, LetsConfigError
from .selection import STRATEGIES
# lets_core.train.stages imports this module, so lets_core/__init__ reaches it through lets_core.train
# (importing it before lets_core.train would be a circular import).
from .train.config import TrainConfig
from .train.losses import DistillationLoss, kd_loss

# What the sampled Des-Nets distill from: the teacher's logits, the Aux-Net's detached logits, or
# the average of those two KD losses.
TARGETS = ("teacher", "aux", "both")


@dataclass(frozen=True)
class ElasticConfig:
    """Settings of elastic stage 1 (the paper's stage 1 is ``elastic=None``).

    num_random: random sizes per step besides the smallest (0: the smallest only).
    min_heads, min_depth: the smallest size of the sandwich rule; None: the learngene's.
    max_depth: the largest depth sampled; None: the Aux depth.
    target: what the Des-Nets distill from, one of :data:`TARGETS`.
    weight: loss = Aux loss + weight x mean of the Des-Nets' KD losses.
    strategy: the selection strategy of the Des-Nets; emit with the same one. Norm strategies
        re-rank the F rows every step, without gradient through the ranking.
    """

    num_random: int = 1
    min_heads: int | None = None
    min_depth: int | None = None
    max_depth: int | None = None
    target: str = "teacher"
    weight: float = 1.0
    strategy: str = "continuous"

    def __post_init__(self) -> None:
        if not _is_int(self.num_random) or self.num_random < 0:
            raise LetsConfigError(f"ElasticConfig.num_random must be an integer >= 0, got {self.num_random!r}")
        for name in ("min_heads", "min_depth", "max_depth"):
            value = getattr(self, name)
            if value is not None and (not _is_int(value) or value < 1):
                raise LetsConfigError(f"ElasticConfig.{name} must be None or an integer >= 1, got {value!r}")
        if self.min_depth is not None and self.max_depth is not None and self.min_depth > self.max_depth:
            raise LetsConfigError(f"ElasticConfig.min_depth {self.min_depth} must be <= max_depth {self.max_depth}")
        if self.target not in TARGETS:
            raise LetsConfigError(f"ElasticConfig.target must be one of {list(TARGETS)}, got {self.target!r}")
        weight = self.weight
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not (math.isfinite(weight) and weight > 0):
            raise LetsConfigError(f"ElasticConfig.weight must be a finite number > 0, got {weight!r}")
        if self.strategy not in STRATEGIES:
            raise LetsConfigError(f"ElasticConfig.strategy must be one of {list(STRATEGIES)}, got {self.strategy!r}")

    def sampler(self, cfg: LetsConfig) -> "SizeSampler":
        """The size grid of ``cfg`` with the defaults filled in; raises DesSizeError on sizes that
        ``cfg``'s bundle cannot emit."""
        lg = cfg.learngene
        lo, hi = lg.num_heads, cfg.aux_heads
        min_heads = lo if self.min_heads is None else self.min_heads
        if not lo <= min_heads <= hi:
            raise DesSizeError(f"ElasticConfig.min_heads={min_heads} cannot be emitted by this configuration: "
                               f"heads must be in [{lo}, {hi}] (learngene heads to Aux heads)")
        min_depth = lg.depth if self.min_depth is None else self.min_depth
        max_depth = cfg.aux_depth if self.max_depth is None else self.max_depth
        if min_depth > max_depth:
            raise DesSizeError(f"ElasticConfig depths give an empty range: min_depth {min_depth} > max_depth "
                               f"{max_depth} (defaults: min_depth = learngene depth {lg.depth}, max_depth = Aux "
                               f"depth {cfg.aux_depth})")
        return SizeSampler(min_heads, hi, min_depth, max_depth, self.num_random)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ElasticConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        if unknown := sorted(set(data) - known):
            raise LetsConfigError(f"unknown ElasticConfig keys {unknown}; allowed: {sorted(known)}")
        return cls(**data)


@dataclass(frozen=True)
class SizeSampler:
    """The sandwich rule over heads in [min_heads, max_heads] x depth in [min_depth, max_depth]."""

    min_heads: int
    max_heads: int
    min_depth: int
    max_depth: int
    num_random: int

    @property
    def smallest(self) -> tuple[int, int]:
        return self.min_heads, self.min_depth

    def sizes(self, seed: int, epoch: int, step: int) -> list[tuple[int, int]]:
        """The smallest size, then ``num_random`` sizes drawn uniformly (with replacement) from the
        grid. A function of (seed, epoch, step) alone: the global RNG is neither read nor advanced."""
        gen = torch.Generator().manual_seed(step_seed(seed, epoch, step))
        heads = torch.randint(self.min_heads, self.max_heads + 1, (self.num_random,), generator=gen)
        depths = torch.randint(self.min_depth, self.max_depth + 1, (self.num_random,), generator=gen)
        return [self.smallest, *zip(heads.tolist(), depths.tolist())]


def step_seed(seed: int, epoch: int, step: int) -> int:
    """A 63-bit generator seed for one step; hashing keeps nearby (seed, epoch, step) unrelated."""
    digest = hashlib.sha256(f"lets-elastic:{seed}:{epoch}:{step}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & (2**63 - 1)


class ElasticObjective:
    """The loss of one elastic step, for ``fit(..., objective=...)``.

    loss = DistillationLoss(alpha, tau)(Aux logits) + weight x mean over the sampled sizes of the
    Des-Net's KD loss (temperature tau) toward ``config.target``. The logits returned for the
    accuracy counter are the Aux-Net's.

    Example:
        >>> import torch, lets_core
        >>> from lets_core.train import TrainConfig
        >>> cfg = lets_core.presets.tiny()
        >>> objective = ElasticObjective(ElasticConfig(target="aux"), cfg, TrainConfig(alpha=0.0))
        >>> x, y = torch.randn(2, 1, 28, 28), torch.tensor([1, 7])
        >>> loss, logits = objective(lets_core.AuxNet(cfg), x, y, None, epoch=0, step=0)
        >>> loss.requires_grad, logits.shape
        (True, torch.Size([2, 10]))
    """

    def __init__(self, config: ElasticConfig, cfg: LetsConfig, train_cfg: TrainConfig) -> None:
        self.config = config
        self.sampler = config.sampler(cfg)
        self.seed = train_cfg.seed
        self.criterion = DistillationLoss(train_cfg.alpha, train_cfg.tau, train_cfg.label_smoothing)

    @property
    def teacher_reason(self) -> str | None:
        if self.config.target != "aux":
            return f"elastic target {self.config.target!r}"
        return f"alpha={self.criterion.alpha}" if self.criterion.needs_teacher else None

    def settings(self) -> dict[str, Any]:
        return {"objective": "elastic", **self.config.to_dict()}

    def __call__(self, model: nn.Module, x: Tensor, y: Tensor, teacher_logits: Tensor | None, epoch: int,
                 step: int) -> tuple[Tensor, Tensor]:
        sizes = self.sampler.sizes(self.seed, epoch, step)
        # Through the module call (not a method of the unwrapped model), so DDP sees the forward.
        logits, des_logits = model(x, des_sizes=sizes, strategy=self.config.strategy)
        targets = []
        if self.config.target in ("teacher", "both"):
            if teacher_logits is None:
                raise ValueError(f"elastic target {self.config.target!r} needs teacher logits; pass a teacher")
            targets.append(teacher_logits)
        if self.config.target in ("aux", "both"):
            targets.append(logits.detach())
        tau = self.criterion.tau
        des_loss = torch.stack([sum(kd_loss(des, t, tau) for t in targets) / len(targets) for des in des_logits])
        return self.criterion(logits, y, teacher_logits) + self.config.weight * des_loss.mean(), logits


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
