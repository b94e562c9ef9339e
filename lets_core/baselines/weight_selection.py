"""Weight selection, the paper's IMwLM (Xu et al., ICLR 2024, "Initializing Models with Larger Ones").

Stage 1 trains one plain timm ViT of the Aux-Net's shape (``cfg.aux_embed_dim`` x
``cfg.aux_depth``) with the teacher, loss, recipe and epochs of LeTs stage 1. A Des-Net of
(heads, depth) then takes a consistent subset of that model's elements, following the paper's
steps (layer selection, component mapping, element selection):

- element selection with the same kept indices in every tensor (the paper's "consistency"):
  residual neurons R (|R| = heads x head_dim), whole heads H (their head_dim rows of q, k and v
  and the same proj columns: head_dim is fixed, and q and k dimensions pair up inside a head) and
  MLP hidden neurons M (|M| = r x width) in fc1 rows and fc2 columns; the position embedding,
  patch embedding, LayerNorms, fc_norm and the head's columns take R.
  ``rule="uniform"`` (the paper's default, "uniform selection") keeps evenly spaced indices
  ⌊k·N/n⌋, k = 0..n−1, i.e. every (N/n)-th element when n divides N; ``rule="first"`` keeps the
  first n ("first-N selection", the paper's alternative).
- layer selection: the paper selects the first layers of an isotropic model; here layers follow
  LeTs's automatic depth plan instead (the issue asks for "the same depth plan rule as LeTs"),
  applied to the plain model's layers one by one (tie_length 1, :func:`subnet.layer_plan`), so
  both methods put a Des-Net's layers at the same relative depths.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch
from torch import Tensor, nn
from timm.models.vision_transformer import VisionTransformer

from ..config import LetsConfig
from ..data import Splits
from ..des import build_des
from ..errors import DesSizeError
from ..train.config import TrainConfig
from ..train.distributed import DistEnv
from ..vit import build_vit
from .source import Source, clone_state, detached
from .stage1 import run_stage1
from .subnet import SubNet, check_heads, check_plain_state, des_dims, layer_plan, sub_state

NAME = "imwlm"
ELEMENT_RULES = ("uniform", "first")


def element_indices(total: int, keep: int, rule: str = "uniform") -> Tensor:
    """``keep`` of ``total`` indices, ascending: evenly spaced (⌊k·total/keep⌋) or the first ``keep``."""
    if rule not in ELEMENT_RULES:
        raise DesSizeError(f"weight-selection rule must be one of {list(ELEMENT_RULES)}, got {rule!r}")
    if not 1 <= keep <= total:
        raise DesSizeError(f"cannot keep {keep} of {total} elements")
    k = torch.arange(keep)
    return k if rule == "first" else (k * total) // keep


def selection(cfg: LetsConfig, heads: int, depth: int, rule: str = "uniform") -> SubNet:
    """The indices and layers a (heads, depth) Des-Net keeps (see the module doc)."""
    heads = check_heads(cfg, heads, "weight selection")
    width, _, hidden = des_dims(cfg, heads)
    big = cfg.learngene.mlp_hidden(cfg.aux_embed_dim)
    return SubNet(residual=element_indices(cfg.aux_embed_dim, width, rule),
                  heads=element_indices(cfg.aux_heads, heads, rule),
                  mlp=element_indices(big, hidden, rule),
                  plan=layer_plan(cfg, depth))


def check_size(cfg: LetsConfig, heads: int, depth: int) -> None:
    """Any heads in [1, Aux heads] and depth >= 1 (deeper than the Aux-Net repeats layers)."""
    selection(cfg, heads, depth)


def train_stage1(splits: Splits, teacher: nn.Module | None, cfg: LetsConfig, train_cfg: TrainConfig,
                 out_dir: str | Path | None = None, resume: bool = False, *, env: DistEnv | None = None,
                 sizes: Sequence[tuple[int, int]] | None = None) -> Source:
    """Train the large plain ViT (Aux-Net shape) like LeTs stage 1; its weights are the source."""
    torch.manual_seed(train_cfg.seed)
    model = build_vit(cfg.learngene, cfg.aux_embed_dim, cfg.aux_depth, cfg.drop_path_rate)
    return run_stage1(NAME, model, lambda m: detached(m.state_dict()), splits, teacher, cfg, train_cfg, out_dir,
                      resume, env)


def emit(source: Source, heads: int, depth: int, *, drop_path_rate: float = 0.0,
         rule: str = "uniform") -> VisionTransformer:
    """The Des-Net whose every tensor is the sub-tensor of the large model at :func:`selection`'s indices."""
    cfg = source.cfg
    check_plain_state(cfg, source.state, "weight-selection")
    sub = selection(cfg, heads, depth, rule)
    with torch.no_grad():
        state = sub_state(cfg, source.state, sub)
    return build_des(cfg, len(sub.residual), len(sub.plan), clone_state(state), drop_path_rate, source.input_norm)
