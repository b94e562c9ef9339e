"""A ViT whose block weights are computed from a few shared parameter sets at every forward: the
auxiliary network of TLEG (two sets, a linear function of depth) and of SWS (one set per stage).

The parts outside the blocks (patch embedding, pos_embed, fc_norm, head) are ordinary
parameters of a depth-0 timm ViT, so they are initialized exactly as timm initializes a ViT.
The forward runs timm's own ViT code on a weightless (meta) skeleton with the computed tensors,
the same code an emitted Des-Net runs.
"""

from __future__ import annotations

import abc

from torch import Tensor, nn
from torch.func import functional_call
from timm.models.vision_transformer import Block

from ..config import LetsConfig
from ..depth_plan import as_integer
from ..errors import DesSizeError
from ..vit import build_vit

STEM_PREFIX = "stem."


def new_block(cfg: LetsConfig) -> Block:
    """One timm Block of the Aux-Net's width, initialized as timm initializes a ViT's blocks
    (trunc-normal 0.02 Linear weights, zero biases, identity LayerNorms)."""
    return build_vit(cfg.learngene, cfg.aux_embed_dim, 1).blocks[0]


def check_depth_only_size(cfg: LetsConfig, heads: object, depth: object, method: str) -> None:
    """Depth-only methods (TLEG, SWS) make any depth >= 1 at their learngene's width, the Aux-Net's."""
    if isinstance(heads, bool) or heads != cfg.aux_heads:
        raise DesSizeError(f"{method} expands depth only: its learngene is {cfg.aux_embed_dim} wide, so it initializes "
                           f"networks of {cfg.aux_heads} heads (width {cfg.aux_embed_dim}) only, got heads={heads!r}; "
                           f"use imwlm, nested or lets for other widths")
    checked = as_integer(depth)
    if checked is None or checked < 1:
        raise DesSizeError(f"depth must be an integer >= 1, got {depth!r}")


def block_tensors(block: nn.Module) -> dict[str, Tensor]:
    """A block's parameters by their timm names inside a block (``attn.qkv.weight``, ...)."""
    return dict(block.named_parameters())


class GeneratedViT(nn.Module, abc.ABC):
    """Base of the TLEG and SWS auxiliary networks: subclasses define :meth:`block_states`."""

    def __init__(self, cfg: LetsConfig) -> None:
        super().__init__()
        self.cfg = cfg
        lg = cfg.learngene
        self.stem = build_vit(lg, cfg.aux_embed_dim, 0)
        # Weightless and unregistered (see __setattr__): adds nothing to parameters() or .to().
        self._skeleton = build_vit(lg, cfg.aux_embed_dim, cfg.aux_depth, cfg.drop_path_rate, device="meta")
        self._skeleton.train(self.training)

    def __setattr__(self, name: str, value: object) -> None:
        if name == "_skeleton":
            object.__setattr__(self, name, value)
        else:
            super().__setattr__(name, value)

    def train(self, mode: bool = True) -> "GeneratedViT":
        super().train(mode)
        self._skeleton.train(mode)
        return self

    @abc.abstractmethod
    def block_states(self) -> list[dict[str, Tensor]]:
        """Each Aux layer's block tensors (timm names inside a block), with gradient: what
        distinguishes the methods (TLEG's linear expansion, SWS's shared stages)."""

    def stem_state(self) -> dict[str, Tensor]:
        return dict(self.stem.named_parameters())

    def timm_state(self) -> dict[str, Tensor]:
        """The whole network as a timm state dict (layers that share weights share tensors)."""
        state = self.stem_state()
        for i, block in enumerate(self.block_states()):
            state.update({f"blocks.{i}.{name}": t for name, t in block.items()})
        return state

    def forward(self, x: Tensor) -> Tensor:
        return functional_call(self._skeleton, self.timm_state(), (x,))

    def no_weight_decay(self) -> set[str]:
        # The LeTs recipe spares position embeddings; under "stem." the default name rule misses it.
        return {STEM_PREFIX + "pos_embed"}
