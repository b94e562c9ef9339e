"""The methods a LeTs run is compared with, by name, so the CLI and reports list them from one place."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from timm.models.vision_transformer import VisionTransformer

from ..config import LetsConfig
from . import ligo, nested, pre_fin, scratch, sws, tleg, weight_selection
from .source import Source


@dataclass(frozen=True)
class Method:
    """One baseline.

    train_stage1(splits, teacher, cfg, train_cfg, out_dir=None, resume=False, *, env=None,
    sizes=None, **options) -> Source: the stage-1 run, on the LeTs stage-1 teacher, loss, recipe
    and epochs (``sizes`` is needed by Pre-Fin only; ``options`` are the method's own, e.g. SWS's
    ``split``). emit(source, heads, depth, *, drop_path_rate=0.0) -> a plain timm
    VisionTransformer carrying ``lets_model_args``, ready for :func:`lets_core.train.finetune`.
    check_size(cfg, heads, depth) raises :class:`lets_core.DesSizeError` for a size the method
    cannot make. ``selects``: its emit also takes LeTs's ``strategy=`` (the selection of new
    neurons), so a comparison run with another strategy must pass it on.
    """

    name: str
    description: str
    sizes: str
    train_stage1: Callable[..., Source]
    emit: Callable[..., VisionTransformer]
    check_size: Callable[[LetsConfig, int, int], None]
    selects: bool = False

    def supports(self, cfg: LetsConfig, heads: int, depth: int) -> bool:
        try:
            self.check_size(cfg, heads, depth)
        except ValueError:
            return False
        return True


def _method(module, description: str, sizes: str, selects: bool = False) -> Method:
    return Method(module.NAME, description, sizes, module.train_stage1, module.emit, module.check_size, selects)


METHODS: dict[str, Method] = {m.name: m for m in (
    _method(weight_selection, "IMwLM / weight selection (Xu et al., ICLR 2024): one plain Aux-shaped ViT trained "
            "like stage 1; Des-Nets take evenly spaced residual, head and MLP indices and LeTs-plan layers",
            "heads 1..Aux heads, any depth"),
    _method(tleg, "TLEG (Xia et al., AAAI 2024): learngene theta_A, theta_B; layer l = theta_A + (l-1)/L theta_B, "
            "trained through an Aux-depth network by distillation", "Aux heads only, any depth"),
    _method(sws, "SWS (Xia et al., IJCAI 2024): Aux-Net stages share one layer each; Des-Nets repeat each stage's "
            "layer for its share of the depth", "Aux heads only, any depth"),
    _method(nested, "Nested ViT (MatFormer-style): one plain Aux-shaped ViT whose head/residual/MLP prefixes and "
            "LeTs-plan layers are trained as sub-networks (sandwich sampling); Des-Nets are prefixes",
            "heads 1..Aux heads, any depth"),
    _method(ligo, "LeTs(LiGO), the paper's ordering ablation: each distinct Aux layer mixes all learngene blocks "
            "first (dense G), then is widened by its own F set; trained and emitted as LeTs",
            "heads from the learngene's to the Aux-Net's, any depth", selects=True),
    _method(pre_fin, "Pre-Fin: each Des-Net trained from scratch on the stage-1 budget, then tuned (stores every "
            "model)", "LeTs's sizes, those given to stage 1"),
    _method(scratch, "Scratch: timm's random initialization", "LeTs's sizes"),
)}

ALIASES = {"weight-selection": "imwlm", "weight_selection": "imwlm", "prefin": "pre-fin", "pre_fin": "pre-fin",
           "ligo": "lets-ligo", "lets_ligo": "lets-ligo"}


def get_method(name: str) -> Method:
    """The method registered as ``name`` (or an alias such as "weight-selection")."""
    key = ALIASES.get(name, name)
    if key not in METHODS:
        raise KeyError(f"unknown baseline {name!r}; known: {sorted(METHODS)}")
    return METHODS[key]
