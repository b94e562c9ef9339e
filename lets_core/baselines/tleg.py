"""TLEG: Transformer as Linear Expansion of learnGene (Xia et al., AAAI 2024).

The learngene is two parameter sets per block module, θ_A and θ_B (every tensor of a timm Block:
LayerNorms, qkv, proj, fc1, fc2, weights and biases). Layer l (1-based) of an L-layer network is
a linear function of its position:

    θ_l = θ_A + ((l − 1) / L) · θ_B,        l = 1, ..., L

Stage 1 trains an auxiliary network of L = ``cfg.aux_depth`` layers built this way, by soft
distillation from the teacher (the LeTs stage-1 loss and recipe); a Des-Net of any depth L' is
the same expansion with L' in place of L, then fine-tuned without the constraint.

Source of the formula: the paper (abstract; Fig. 3: "an auxiliary model wherein each layer is
linearly expanded from learngene ... descendant models of varying depths via adopting linear
expansion on θA and θB ... fine-tuned normally without the restriction of linear expansion")
makes layer l θ_A plus a position-scaled θ_B. Our reference corpus held the paper's abstract
and figure captions but not its equation, so the position coefficient (l − 1)/L is the one of
the authors' released code (layer i, counted from 0, of an L-layer network uses i / L); it is
written from that reading, not copied. If the paper's equation reads (l − 1)/(L − 1), only
:func:`position_coefficient` changes.

Width. TLEG expands depth only, at the learngene's width. Here its learngene has the Aux-Net's
width (``cfg.aux_embed_dim``) so that its networks are the same size as the other methods' largest
ones; Des-Nets of any other width are not produced (DesSizeError names the one width).
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
from ..train.config import TrainConfig
from ..train.distributed import DistEnv
from .generated import STEM_PREFIX, GeneratedViT, block_tensors, check_depth_only_size, new_block
from .source import Source, clone_state, detached
from .stage1 import run_stage1

NAME = "tleg"
THETA_A, THETA_B = "theta_a.", "theta_b."


def position_coefficient(layer: int, depth: int) -> float:
    """(l − 1)/L for the 0-based ``layer`` (= l − 1) of a ``depth``-layer network."""
    return layer / depth


def expand(theta_a: dict[str, Tensor], theta_b: dict[str, Tensor], layer: int, depth: int) -> dict[str, Tensor]:
    """Block tensors of 0-based ``layer`` of a ``depth``-layer network: θ_A + ((l − 1)/L)·θ_B."""
    c = position_coefficient(layer, depth)
    return {name: a + c * theta_b[name] for name, a in theta_a.items()}


class TlegNet(GeneratedViT):
    """TLEG's auxiliary network: ``cfg.aux_depth`` layers linearly expanded from θ_A, θ_B.

    θ_A starts as timm initializes a block; θ_B's Linear weights start trunc-normal (std 0.02)
    like any Linear weight, its biases and LayerNorm parameters at zero, so at step 0 the layers
    differ by a small random slope and every LayerNorm starts as the identity.
    """

    def __init__(self, cfg: LetsConfig) -> None:
        super().__init__(cfg)
        self.theta_a = new_block(cfg)
        self.theta_b = new_block(cfg)
        with torch.no_grad():
            for name, p in self.theta_b.named_parameters():
                if not (p.ndim == 2 and name.endswith(".weight")):
                    p.zero_()

    def block_states(self) -> list[dict[str, Tensor]]:
        a, b = block_tensors(self.theta_a), block_tensors(self.theta_b)
        depth = self.cfg.aux_depth
        return [expand(a, b, i, depth) for i in range(depth)]


def check_size(cfg: LetsConfig, heads: int, depth: int) -> None:
    """TLEG makes any depth >= 1 at the width of its learngene (the Aux-Net's) only."""
    check_depth_only_size(cfg, heads, depth, "TLEG")


def train_stage1(splits: Splits, teacher: nn.Module | None, cfg: LetsConfig, train_cfg: TrainConfig,
                 out_dir: str | Path | None = None, resume: bool = False, *, env: DistEnv | None = None,
                 sizes: Sequence[tuple[int, int]] | None = None) -> Source:
    """Train TLEG's auxiliary network by distillation (the LeTs stage-1 loss and recipe)."""
    torch.manual_seed(train_cfg.seed)
    model = TlegNet(cfg)
    return run_stage1(NAME, model, lambda m: detached(m.state_dict()), splits, teacher, cfg, train_cfg, out_dir,
                      resume, env, settings={"expansion": "theta_a + (l-1)/L * theta_b"})


def emit(source: Source, heads: int, depth: int, *, drop_path_rate: float = 0.0) -> VisionTransformer:
    """The ``depth``-layer network linearly expanded from the trained θ_A, θ_B (a plain timm ViT)."""
    cfg = source.cfg
    check_size(cfg, heads, depth)
    depth = int(depth)
    a, b = detached(source.state, THETA_A), detached(source.state, THETA_B)
    state = detached(source.state, STEM_PREFIX)
    for i in range(depth):
        state.update({f"blocks.{i}.{k}": v for k, v in expand(a, b, i, depth).items()})
    return build_des(cfg, cfg.aux_embed_dim, depth, clone_state(state), drop_path_rate, source.input_norm)
