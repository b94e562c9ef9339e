"""Configuration dataclasses of the learngene, the F/G transformations and the Aux-Net.

Every value is checked when the object is built, so a bad configuration fails where it is
written, with a message naming the value and what is allowed, rather than deep inside a matmul.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from typing import Any

from .errors import LetsConfigError

F_INIT_SCHEMES = ("normalized-uniform", "net2net", "normal")
G_INIT_SCHEMES = ("paper", "uniform", "spread")
# How F and G build an Aux layer (see TransformConfig.layout).
TRANSFORM_LAYOUTS = ("lets", "ligo")
MAX_INIT_NOISE = 1.0

# The module types that own one G coefficient set for weights (and LayerNorm gamma) and one for
# biases (and beta). The order fixes the layout of the G tensor.
G_MODULE_TYPES = ("norm1", "q", "k", "v", "proj", "norm2", "fc1", "fc2")


def _positive_int(owner: str, name: str, value: Any) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise LetsConfigError(f"{owner}.{name} must be a positive integer, got {value!r}")


def _choice(owner: str, name: str, value: Any, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise LetsConfigError(f"{owner}.{name} must be one of {list(allowed)}, got {value!r}")


def finite_number(value: Any) -> bool:
    """Whether ``value`` is a finite int or float (not a bool, which is an int to Python): the check
    every configuration's numeric fields share, so that each stays a value JSON can hold."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _mlp_width(ratio: float, width: int, what: str) -> int:
    hidden = ratio * width
    if abs(hidden - round(hidden)) > 1e-9:
        raise LetsConfigError(f"mlp_ratio {ratio} times {what} {width} is {hidden}, not an integer")
    return int(round(hidden))


@dataclass(frozen=True)
class LearngeneConfig:
    """Shape of the compact ViT that all sizes grow from (paper: ViT-S-like, 8 blocks).

    LayerNorm eps is timm's 1e-6 and q/k/v carry biases, as in the paper; both are fixed because
    an emitted Des-Net must be rebuilt by timm from JSON keyword arguments alone.
    """

    img_size: int = 224
    patch_size: int = 16
    in_chans: int = 3
    num_classes: int = 1000
    embed_dim: int = 384
    depth: int = 8
    head_dim: int = 64
    mlp_ratio: float = 4.0

    def __post_init__(self) -> None:
        for name in ("img_size", "patch_size", "in_chans", "num_classes", "embed_dim", "depth", "head_dim"):
            _positive_int("LearngeneConfig", name, getattr(self, name))
        if self.img_size % self.patch_size:
            raise LetsConfigError(
                f"LearngeneConfig.img_size {self.img_size} must be a multiple of patch_size {self.patch_size}"
            )
        if self.embed_dim % self.head_dim:
            raise LetsConfigError(
                f"LearngeneConfig.embed_dim {self.embed_dim} must be a multiple of head_dim {self.head_dim}"
            )
        # Finite: an infinite ratio would overflow when rounding the MLP width.
        if not (finite_number(self.mlp_ratio) and self.mlp_ratio > 0):
            raise LetsConfigError(f"LearngeneConfig.mlp_ratio must be a finite number > 0, got {self.mlp_ratio!r}")
        # Every allowed width is a multiple of head_dim, so this makes every MLP width an integer.
        _mlp_width(self.mlp_ratio, self.head_dim, "head_dim")

    @property
    def num_heads(self) -> int:
        return self.embed_dim // self.head_dim

    @property
    def num_patches(self) -> int:
        return (self.img_size // self.patch_size) ** 2

    def mlp_hidden(self, width: int) -> int:
        """MLP hidden size of a block of residual width ``width``."""
        return _mlp_width(self.mlp_ratio, width, "width")


@dataclass(frozen=True)
class TransformConfig:
    """Layout and initialization of the width (F) and depth (G) transformations.

    group_size: learngene blocks per group (s); tie_length: consecutive Aux layers sharing one G
    row (t); f_init / g_init: initialization schemes (see ``width_depth.init_f_`` / ``init_g_``);
    f_noise: std of the Gaussian noise of the ``net2net`` F init; g_noise: upper bound of the
    uniform noise of the ``paper`` and ``spread`` G inits.

    layout: the order in which F and G build an Aux layer.

    - ``"lets"`` (the paper's method): widen each learngene block j with its own F set
      (F_q^j, F_k^j, F_v^j, F_ffn^j), then mix the widened blocks of a group with G.
    - ``"ligo"`` (the paper's ablation LeTs(LiGO), named after LiGO's growth operator): mix first,
      every distinct Aux layer (G row) as a G-weighted sum of ALL learngene blocks, then widen it
      once with an F set of its own. G is therefore dense, (rows x L_g) per module type and kind:
      group_size must be the learngene depth (one group). The F sets belong to the
      distinct Aux layers instead of the learngene blocks, one per G row, so tied Aux layers stay
      identical (tie_length 1 gives one F set per Aux layer). F_e and F_cls stay shared: the
      residual stream and the head must mean the same neurons in every layer.
      ``presets.ligo(cfg)`` turns a configuration into its LeTs(LiGO) ablation.
    """

    group_size: int = 2
    tie_length: int = 2
    f_init: str = "normalized-uniform"
    g_init: str = "paper"
    f_noise: float = 0.01
    g_noise: float = 0.03
    layout: str = "lets"

    def __post_init__(self) -> None:
        _positive_int("TransformConfig", "group_size", self.group_size)
        _positive_int("TransformConfig", "tie_length", self.tie_length)
        _choice("TransformConfig", "layout", self.layout, TRANSFORM_LAYOUTS)
        _choice("TransformConfig", "f_init", self.f_init, F_INIT_SCHEMES)
        _choice("TransformConfig", "g_init", self.g_init, G_INIT_SCHEMES)
        for name in ("f_noise", "g_noise"):
            value = getattr(self, name)
            if not (finite_number(value) and value >= 0):
                raise LetsConfigError(f"TransformConfig.{name} must be a finite number >= 0, got {value!r}")
            # The noise perturbs entries of size 1 (the copied neuron, the copied layer's G entry);
            # above 1 it buries them, and near the float limit the G normalization overflows to NaN.
            if value > MAX_INIT_NOISE:
                raise LetsConfigError(f"TransformConfig.{name} must be at most {MAX_INIT_NOISE}, got {value!r}")


@dataclass(frozen=True)
class LetsConfig:
    """The whole LeTs model: learngene, Aux-Net size and transformation layout."""

    learngene: LearngeneConfig = field(default_factory=LearngeneConfig)
    aux_embed_dim: int = 768
    aux_depth: int = 16
    transform: TransformConfig = field(default_factory=TransformConfig)
    drop_path_rate: float = 0.0

    def __post_init__(self) -> None:
        for name, kind in (("learngene", LearngeneConfig), ("transform", TransformConfig)):
            if not isinstance(getattr(self, name), kind):  # a dict here failed later as an AttributeError
                raise LetsConfigError(f"LetsConfig.{name} must be a {kind.__name__} (LetsConfig.from_dict reads "
                                      f"dicts), got {type(getattr(self, name)).__name__}")
        lg, tf = self.learngene, self.transform
        _positive_int("LetsConfig", "aux_embed_dim", self.aux_embed_dim)
        _positive_int("LetsConfig", "aux_depth", self.aux_depth)
        if self.aux_embed_dim % lg.head_dim or self.aux_embed_dim < lg.embed_dim:
            raise LetsConfigError(
                f"LetsConfig.aux_embed_dim {self.aux_embed_dim} must be a multiple of head_dim "
                f"{lg.head_dim} and at least the learngene width {lg.embed_dim}"
            )
        if tf.layout == "ligo" and tf.group_size != lg.depth:
            raise LetsConfigError(
                f"TransformConfig.layout 'ligo' mixes every learngene block into each Aux layer, so "
                f"TransformConfig.group_size must be the learngene depth {lg.depth}, got {tf.group_size} "
                f"(presets.ligo(cfg) sets both)"
            )
        if lg.depth % tf.group_size:
            raise LetsConfigError(
                f"TransformConfig.group_size {tf.group_size} must divide the learngene depth {lg.depth}; "
                f"allowed: {_divisors(lg.depth)}"
            )
        unit = self.num_groups * tf.tie_length
        if self.aux_depth % unit:
            raise LetsConfigError(
                f"LetsConfig.aux_depth {self.aux_depth} cannot be laid out: it must be a multiple of "
                f"(number of groups {self.num_groups}) x (tie_length {tf.tie_length}) = {unit}"
            )
        if not (finite_number(self.drop_path_rate) and 0 <= self.drop_path_rate < 1):
            raise LetsConfigError(f"LetsConfig.drop_path_rate must be in [0, 1), got {self.drop_path_rate!r}")

    # Derived sizes -----------------------------------------------------------------------------
    @property
    def delta(self) -> int:
        """Number of new residual neurons of the Aux-Net (D - d)."""
        return self.aux_embed_dim - self.learngene.embed_dim

    @property
    def aux_heads(self) -> int:
        return self.aux_embed_dim // self.learngene.head_dim

    @property
    def num_groups(self) -> int:
        return self.learngene.depth // self.transform.group_size

    @property
    def layers_per_group(self) -> int:
        return self.aux_depth // self.num_groups

    @property
    def num_rows(self) -> int:
        """Number of G rows, i.e. of distinct Aux layers (one per tied run)."""
        return self.aux_depth // self.transform.tie_length

    def row_of(self, aux_layer: int) -> int:
        return aux_layer // self.transform.tie_length

    def group_of_row(self, row: int) -> int:
        return row // (self.num_rows // self.num_groups)

    @property
    def num_f_sets(self) -> int:
        """Number of per-layer F sets (F_q, F_k, F_v, F_ffn): one per learngene block in the
        "lets" layout, one per distinct Aux layer (G row) in the "ligo" layout."""
        return self.num_rows if self.transform.layout == "ligo" else self.learngene.depth

    # A Des-Net keeps whole new heads and MLP neurons per selection unit: the F sets that one Aux
    # layer is built from, inside which one index must mean one neuron. In "lets" an Aux layer
    # mixes the widened blocks of its group, so a unit is a group; in "ligo" an Aux layer is
    # widened by its own F set only, so a unit is a distinct Aux layer.
    @property
    def num_selection_units(self) -> int:
        return self.num_rows if self.transform.layout == "ligo" else self.num_groups

    def unit_of_row(self, row: int) -> int:
        """The selection unit of G row ``row`` (a distinct Aux layer)."""
        return row if self.transform.layout == "ligo" else self.group_of_row(row)

    def f_sets_of_unit(self, unit: int) -> range:
        """Indices of the F sets in selection unit ``unit`` (consecutive)."""
        if self.transform.layout == "ligo":
            return range(unit, unit + 1)
        s = self.transform.group_size
        return range(unit * s, (unit + 1) * s)

    # Serialization -------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "LetsConfig":
        _check_object(data, "LetsConfig")
        data = dict(data)
        lg = dataclass_from_dict(LearngeneConfig, data.pop("learngene", {}), "learngene")
        tf = dataclass_from_dict(TransformConfig, data.pop("transform", {}), "transform")
        return dataclass_from_dict(cls, data, "LetsConfig", learngene=lg, transform=tf)

    @classmethod
    def from_json(cls, text: str | bytes) -> "LetsConfig":
        try:
            data = json.loads(text)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise LetsConfigError(f"a LetsConfig must be a JSON object; the text is not valid JSON ({exc})") from exc
        return cls.from_dict(data)


def _check_object(data: Any, where: str) -> None:
    # JSON from a file may hold anything; without this a list or a number fails as a TypeError.
    if not isinstance(data, dict):
        raise LetsConfigError(f"{where} must be a JSON object (a dict of its fields), got {data!r:.80}")


def dataclass_from_dict(kind: type, data: dict[str, Any], where: str, **extra: Any) -> Any:
    """``kind(**data, **extra)`` for a dataclass, refusing a non-dict and unknown keys with a
    LetsConfigError that names them and the allowed ones (every config's ``from_dict`` uses it)."""
    _check_object(data, where)
    known = {f.name for f in dataclasses.fields(kind)}
    unknown = sorted(map(str, set(data) - known))
    if unknown:
        raise LetsConfigError(f"unknown keys {unknown} in {where}; allowed: {sorted(known)}")
    return kind(**data, **extra)


def _divisors(n: int) -> list[int]:
    return [k for k in range(1, n + 1) if n % k == 0]


def require_config(value: Any, kind: type, caller: str) -> Any:
    """``value`` when it is a ``kind``; else a TypeError naming what was passed and what ``caller``
    needs (given an AuxNet or a LetsConfig in its place, a bare AttributeError deep inside named
    neither)."""
    if isinstance(value, kind):
        return value
    hint = ""
    for attr in ("cfg", "learngene"):  # an AuxNet or a Learngene holds its cfg, a LetsConfig its learngene's
        if isinstance(getattr(value, attr, None), kind):
            hint = f"; pass its .{attr}"
            break
    else:
        if isinstance(value, dict) and hasattr(kind, "from_dict"):
            hint = f"; build one from a dict with {kind.__name__}.from_dict"
    raise TypeError(f"{caller} needs a {kind.__name__}, got {type(value).__name__}{hint}")
