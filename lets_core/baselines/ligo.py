"""LeTs(LiGO): the paper's ordering ablation of LeTs, as a compared method named ``lets-ligo``.

The spec: "depth mix over all learngene layers first, then one width expansion per Aux layer".
It is LeTs with the "ligo" transform layout (:class:`lets_core.TransformConfig`,
:func:`lets_core.presets.ligo`): every distinct Aux layer r is first a G-weighted sum of ALL
learngene blocks (G dense: rows x L_g coefficients per module type and kind), then widened once
by its own F set (F_q^r, F_k^r, F_v^r, F_ffn^r) and the shared F_e:

    W_r = E(F_out^r) · (Σ_j Gw[r, j] · W_j) · E(F_in^r)ᵀ,      b_r = E(F_out^r) · Σ_j Gb[r, j] · b_j

where LeTs widens each learngene block j with F set j first and mixes only the s blocks of a
group. Everything else is LeTs's: the learngene, F_e, F_cls and the Aux pos_embed, the inits,
the stage-1 loss and recipe (this module trains an :class:`lets_core.AuxNet` of the ligo
layout through the shared baseline stage-1 runner), and the Des-Net emission
(:func:`lets_core.emit_des`: generate the Aux weights, then select; a selection unit is one
distinct Aux layer here, see :mod:`lets_core.selection`). The G inits are the spec's rules with
s = L_g: the paper init starts row r near learngene block (first Aux layer of the row) mod L_g
(tiny preset: blocks 0, 2, 0, 2; LeTs: 0, 0, 2, 2), ``spread`` starts both layouts as the
learngene with each block repeated in order.

Stored parameters are the Aux-Net's trainable ones, as for ``lets``: in the paper configuration
37,736,552 (LeTs 37,735,784; the F sets are as many, 8 distinct Aux layers against 8 learngene
blocks, and G grows from 8 x 2 x 8 x 2 = 256 to 8 x 2 x 8 x 8 = 1,024 coefficients).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch
from torch import Tensor, nn
from timm.models.vision_transformer import VisionTransformer

from .. import presets
from ..auxnet import AuxNet
from ..config import LetsConfig
from ..data import Splits
from ..depth_plan import auto_depth_plan
from ..des import emit_des
from ..errors import BundleError
from ..input_norm import record_input_norm
from ..selection import check_width
from ..train.config import TrainConfig
from ..train.distributed import DistEnv
from .source import Source
from .stage1 import run_stage1

NAME = "lets-ligo"


def stored_state(aux: AuxNet) -> dict[str, Tensor]:
    """The trainable tensors of ``aux``: what the method stores (the learngene's own pos_embed
    is frozen and never used, the Aux-Net has its own)."""
    return {name: p.detach() for name, p in aux.named_parameters() if p.requires_grad}


def aux_net(source: Source) -> AuxNet:
    """The trained LeTs(LiGO) Aux-Net of ``source`` (for :func:`lets_core.emit_des` with any
    strategy or plan, or :func:`lets_core.storage_report`)."""
    cfg = source.cfg
    if cfg.transform.layout != "ligo":
        raise BundleError(f"a {NAME} source holds a 'ligo' layout configuration, this one has layout "
                          f"{cfg.transform.layout!r}; it was not written by {NAME}'s stage 1")
    aux = AuxNet(cfg)
    missing, unexpected = aux.load_state_dict(source.state, strict=False)
    frozen = {name for name, p in aux.named_parameters() if not p.requires_grad}
    if set(missing) != frozen or unexpected:
        raise BundleError(f"the {NAME} source does not match its configuration: missing "
                          f"{sorted(set(missing) - frozen)[:5]}, unexpected {sorted(unexpected)[:5]}")
    return record_input_norm(aux, source.input_norm)


def check_size(cfg: LetsConfig, heads: int, depth: int) -> None:
    """The sizes LeTs makes: heads from the learngene's to the Aux-Net's, any depth >= 1."""
    check_width(cfg, heads)
    auto_depth_plan(cfg, depth)


def train_stage1(splits: Splits, teacher: nn.Module | None, cfg: LetsConfig, train_cfg: TrainConfig,
                 out_dir: str | Path | None = None, resume: bool = False, *, env: DistEnv | None = None,
                 sizes: Sequence[tuple[int, int]] | None = None) -> Source:
    """Train the LeTs(LiGO) Aux-Net of ``cfg``'s sizes (:func:`lets_core.presets.ligo`) with the
    LeTs stage-1 loss and recipe; the source's configuration is the ligo one."""
    ligo_cfg = presets.ligo(cfg)
    torch.manual_seed(train_cfg.seed)  # seeded as train_aux seeds the lets run
    return run_stage1(NAME, AuxNet(ligo_cfg), stored_state, splits, teacher, ligo_cfg, train_cfg, out_dir, resume,
                      env)


def emit(source: Source, heads: int, depth: int, *, drop_path_rate: float = 0.0,
         strategy: str = "continuous") -> VisionTransformer:
    """The Des-Net of ``heads`` x ``depth`` emitted from the trained LeTs(LiGO) Aux-Net, exactly as
    :func:`lets_core.emit_des` emits one from a LeTs Aux-Net (automatic depth plan; it raises
    :class:`lets_core.DesSizeError` for the sizes :func:`check_size` refuses)."""
    return emit_des(aux_net(source), heads, depth, strategy=strategy, drop_path_rate=drop_path_rate)
