"""Elastic stage 1: train sampled Des-Nets beside the Aux-Net, from the same generated weights.

Beyond the paper (lets-method.md, "Beyond the paper: elastic stage 1"). At every optimizer step
the Aux weights are generated once; besides the Aux-Net, the Des-Nets of a few sampled sizes are
gathered from them with gradient (``AuxNet.forward(x, des_sizes=...)``, the same selection and
depth plan as :func:`lets_core.emit_des`) and trained by distillation toward the teacher, the
Aux-Net's own detached logits, or both. Sizes follow the sandwich rule: always the smallest size,
plus ``num_random`` uniform draws from the grid of (heads, depth), from a generator seeded by
(seed, epoch, step), so a resumed run draws the same sizes without saving generator state.
:class:`SampledSizesConfig` and :class:`SampledSizesObjective` hold what elastic LeTs shares with its
baseline, the nested ViT (``lets_core/baselines/nested.py``): the sampled sizes and the loss.

Example:
    >>> import lets_core
    >>> from lets_core.elastic import ElasticConfig
    >>> sampler = ElasticConfig(num_random=2).sampler(lets_core.presets.tiny())
    >>> sizes = sampler.sizes(seed=0, epoch=0, step=0)
    >>> len(sizes), sizes[0]
    (3, (2, 4))
"""

from __future__ import annotations

import abc
import dataclasses
import hashlib
import math
import numbers
from dataclasses import dataclass
from typing import Any, ClassVar, Sequence

import torch
from torch import Tensor, nn

from .config import LetsConfig, dataclass_from_dict
from .depth_plan import as_integer
from .errors import DesSizeError, LetsConfigError
from .selection import STRATEGIES
# lets_core.train.stages imports this module, so lets_core/__init__ reaches it through lets_core.train
# (importing it before lets_core.train would be a circular import).
from .train.config import TrainConfig
from .train.losses import DistillationLoss, kd_loss
from .train.objectives import LOSS_FIELDS

# What the sampled Des-Nets distill from: the teacher's logits, the Aux-Net's detached logits, or
# the average of those two KD losses.
TARGETS = ("teacher", "aux", "both")


def check_weight(value: object, name: str) -> float:
    """``value``, the weight of the sub-networks' loss, when it is a finite real number > 0 (a numpy
    float32 is returned as a float, which JSON can hold); a LetsConfigError naming ``name`` otherwise."""
    real = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if not (real and math.isfinite(value) and value > 0):
        raise LetsConfigError(f"{name} must be a finite number > 0, got {value!r}", fields=(name.split(".")[-1],))
    return value if isinstance(value, (int, float)) else float(value)


@dataclass(frozen=True)
class SampledSizesConfig(abc.ABC):
    """What a stage 1 that trains sub-networks of sampled sizes beside the full model is set by:
    elastic LeTs (:class:`ElasticConfig`) and its baseline, the nested ViT
    (:class:`lets_core.baselines.nested.NestedConfig`), so that both sample the same sizes.

    num_random: random sizes per step besides the smallest (0: the smallest only).
    min_heads, min_depth: the smallest size of the sandwich rule; None: the learngene's.
    max_depth: the largest depth sampled; None: the Aux depth.
    target: what the sub-networks distill from, one of the subclass's ``targets``.
    weight: loss = full-model loss + weight x mean of the sub-networks' KD losses.
    """

    targets: ClassVar[tuple[str, ...]]

    num_random: int = 1
    min_heads: int | None = None
    min_depth: int | None = None
    max_depth: int | None = None
    target: str = "teacher"
    weight: float = 1.0

    def __post_init__(self) -> None:
        kind = type(self).__name__
        # Integer-likes (numpy integers, as sizes elsewhere) are stored as Python ints, which the
        # settings' JSON (checkpoints, bundle.json) can hold; bools are refused (True is no count).
        count = as_integer(self.num_random)
        if count is None or count < 0:
            raise LetsConfigError(f"{kind}.num_random must be an integer >= 0, got {self.num_random!r}",
                                  fields=("num_random",))
        object.__setattr__(self, "num_random", count)
        for name in ("min_heads", "min_depth", "max_depth"):
            value = getattr(self, name)
            if value is not None:
                size = as_integer(value)
                if size is None or size < 1:
                    raise LetsConfigError(f"{kind}.{name} must be None or an integer >= 1, got {value!r}",
                                          fields=(name,))
                object.__setattr__(self, name, size)
        if self.target not in self.targets:
            raise LetsConfigError(f"{kind}.target must be one of {list(self.targets)}, got {self.target!r}",
                                  fields=("target",))
        object.__setattr__(self, "weight", check_weight(self.weight, f"{kind}.weight"))

    def depth_range(self, cfg: LetsConfig) -> tuple[int, int]:
        """The smallest and largest depth sampled for ``cfg``, the defaults filled in; DesSizeError
        on an empty range."""
        lg = cfg.learngene
        min_depth = lg.depth if self.min_depth is None else self.min_depth
        max_depth = cfg.aux_depth if self.max_depth is None else self.max_depth
        if min_depth > max_depth:
            raise DesSizeError(f"{type(self).__name__} depths give an empty range: min_depth {min_depth} > max_depth "
                               f"{max_depth} (defaults: min_depth = learngene depth {lg.depth}, max_depth = Aux "
                               f"depth {cfg.aux_depth})", fields=("min_depth", "max_depth"))
        return min_depth, max_depth

    @abc.abstractmethod
    def sampler(self, cfg: LetsConfig) -> SizeSampler:
        """The size grid of ``cfg`` with the defaults filled in; DesSizeError on sizes the
        sub-networks of ``cfg`` cannot have."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class ElasticConfig(SampledSizesConfig):
    """Settings of elastic stage 1 (the paper's stage 1 is ``elastic=None``): those of
    :class:`SampledSizesConfig`, the sub-networks being Des-Nets and ``target`` one of
    :data:`TARGETS`, and

    strategy: the selection strategy of the Des-Nets; emit with the same one (the trained Aux-Net
        and its bundle record it as ``trained_strategy``; ``emit_des`` with another one raises a
        :class:`lets_core.StrategyWarning`, ``lets emit`` defaults to it). Norm strategies
        re-rank the F rows every step, without gradient through the ranking.
    """

    targets = TARGETS

    strategy: str = "continuous"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.min_depth is not None and self.max_depth is not None and self.min_depth > self.max_depth:
            raise LetsConfigError(f"ElasticConfig.min_depth {self.min_depth} must be <= max_depth {self.max_depth}",
                                  fields=("min_depth", "max_depth"))
        if self.strategy not in STRATEGIES:
            raise LetsConfigError(f"ElasticConfig.strategy must be one of {list(STRATEGIES)}, got {self.strategy!r}",
                                  fields=("strategy",))

    def sampler(self, cfg: LetsConfig) -> SizeSampler:
        """The size grid of ``cfg`` with the defaults filled in; raises DesSizeError on sizes that
        ``cfg``'s bundle cannot emit."""
        lo, hi = cfg.learngene.num_heads, cfg.aux_heads
        min_heads = lo if self.min_heads is None else self.min_heads
        if not lo <= min_heads <= hi:
            raise DesSizeError(f"ElasticConfig.min_heads={min_heads} cannot be emitted by this configuration: "
                               f"heads must be in [{lo}, {hi}] (learngene heads to Aux heads)", fields=("min_heads",))
        return SizeSampler(min_heads, hi, *self.depth_range(cfg), self.num_random)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ElasticConfig":
        return dataclass_from_dict(cls, data, "ElasticConfig")


@dataclass(frozen=True)
class SizeSampler:
    """The sandwich rule over heads in [min_heads, max_heads] x depth in [min_depth, max_depth]."""

    min_heads: int
    max_heads: int
    min_depth: int
    max_depth: int
    num_random: int

    def __post_init__(self) -> None:
        # Built by ElasticConfig.sampler (checked there) or directly; torch.randint would answer an
        # empty range with "random_ from 5 to 3 is empty" and a negative count with a shape error.
        values = {f.name: as_integer(getattr(self, f.name)) for f in dataclasses.fields(self)}
        bad = [f"{name}={getattr(self, name)!r}" for name, v in values.items()
               if v is None or v < (0 if name == "num_random" else 1)]
        if bad:
            raise LetsConfigError(f"SizeSampler needs integers, heads and depths >= 1 and num_random >= 0; got "
                                  f"{', '.join(bad)}")
        if values["min_heads"] > values["max_heads"] or values["min_depth"] > values["max_depth"]:
            raise LetsConfigError(f"SizeSampler ranges must not be empty: heads [{self.min_heads}, {self.max_heads}], "
                                  f"depths [{self.min_depth}, {self.max_depth}]")
        for name, value in values.items():
            object.__setattr__(self, name, value)

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


class SampledSizesObjective(abc.ABC):
    """The loss of one step of a stage 1 configured by a :class:`SampledSizesConfig`:

    loss = DistillationLoss(alpha, tau)(model logits) + weight x mean over the sampled sizes of the
    sub-network's KD loss (temperature tau) toward ``config.target``: ``"teacher"`` (the teacher's
    logits), :attr:`own_target` (the model's own detached logits) or ``"both"`` (the mean of those
    two KD losses). The logits counted for accuracy are the model's. A subclass names itself and
    its own target and says how the model runs its sub-networks (:meth:`forward_sizes`).
    ``train_cfg`` must be the TrainConfig given to ``fit``, which refuses the objective otherwise
    (it records and resumes its own TrainConfig's seed, alpha, tau and label smoothing).
    """

    name: str  # in the settings and the messages, e.g. "elastic"
    own_target: str  # the config.target meaning the model's own detached logits, e.g. "aux"

    def __init__(self, config: SampledSizesConfig, cfg: LetsConfig, train_cfg: TrainConfig) -> None:
        self.config = config
        self.cfg = cfg
        self.sampler = config.sampler(cfg)
        # What fit checks against its own TrainConfig (train.objectives.train_config_conflict).
        self.train_settings = {name: getattr(train_cfg, name) for name in LOSS_FIELDS}
        self.criterion = DistillationLoss(train_cfg.alpha, train_cfg.tau, train_cfg.label_smoothing)

    @abc.abstractmethod
    def forward_sizes(self, model: nn.Module, x: Tensor,
                      sizes: Sequence[tuple[int, int]]) -> tuple[Tensor, list[Tensor]]:
        """The model's logits and those of its sub-network of each size, from one call of the
        module (not of a method of the unwrapped model), so that DDP sees the forward."""

    @property
    def seed(self) -> int:
        """The seed the sampled sizes are drawn with: the TrainConfig's (read from train_settings,
        so the two cannot disagree)."""
        return self.train_settings["seed"]

    @property
    def teacher_reason(self) -> str | None:
        if self.config.target != self.own_target:
            return f"{self.name} target {self.config.target!r}"
        return f"alpha={self.criterion.alpha}" if self.criterion.needs_teacher else None

    def settings(self) -> dict[str, Any]:
        return {"objective": self.name, **self.config.to_dict()}

    def same_run(self, saved: object) -> bool:
        """Whether ``saved``, the settings a checkpoint recorded, train as this objective does
        though they differ: a size left at its default (None) in one and spelled out in the other.
        fit resumes such a checkpoint (it refused ``min_heads=2`` after a run with the default 2)."""
        if not isinstance(saved, dict) or saved.get("objective") != self.name:
            return False
        kind = type(self.config)
        try:
            other = dataclass_from_dict(kind, {k: v for k, v in saved.items() if k != "objective"}, kind.__name__)
            same_sizes = other.sampler(self.cfg) == self.sampler
        except (ValueError, TypeError):
            return False
        defaults = dict(min_heads=None, min_depth=None, max_depth=None)
        return same_sizes and dataclasses.replace(other, **defaults) == dataclasses.replace(self.config, **defaults)

    def __call__(self, model: nn.Module, x: Tensor, y: Tensor, teacher_logits: Tensor | None, epoch: int,
                 step: int) -> tuple[Tensor, Tensor]:
        logits, sub_logits = self.forward_sizes(model, x, self.sampler.sizes(self.seed, epoch, step))
        targets = []
        if self.config.target != self.own_target:
            if teacher_logits is None:
                raise ValueError(f"{self.name} target {self.config.target!r} needs teacher logits; pass a teacher "
                                 f"or use target={self.own_target!r}")
            targets.append(teacher_logits)
        if self.config.target != "teacher":
            targets.append(logits.detach())
        tau = self.criterion.tau
        sub_loss = torch.stack([sum(kd_loss(sub, t, tau) for t in targets) / len(targets) for sub in sub_logits])
        return self.criterion(logits, y, teacher_logits) + self.config.weight * sub_loss.mean(), logits


class ElasticObjective(SampledSizesObjective):
    """The loss of one elastic step, for ``fit(..., objective=...)``.

    loss = DistillationLoss(alpha, tau)(Aux logits) + weight x mean over the sampled sizes of the
    Des-Net's KD loss (temperature tau) toward ``config.target`` (:class:`SampledSizesObjective`,
    the own target being the Aux-Net's logits). The logits returned for the accuracy counter are the
    Aux-Net's.

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

    name = "elastic"
    own_target = "aux"

    def forward_sizes(self, model: nn.Module, x: Tensor,
                      sizes: Sequence[tuple[int, int]]) -> tuple[Tensor, list[Tensor]]:
        return model(x, des_sizes=sizes, strategy=self.config.strategy)

