"""The learngene: a compact ViT whose blocks are stored stacked, one tensor per parameter kind.

Stacking (blocks first) is what lets the generation ops widen all learngene blocks in one batched
call. The learngene converts to and from timm's per-block layout, so it can start from any timm
ViT checkpoint of the right shape and be exported as a plain timm model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import torch
from torch import Tensor, nn

from .config import LearngeneConfig
from .block_layout import BLOCK_MODULES, block_shapes
from .errors import BundleError
from .state_files import read_state_dict
from .vit import build_vit

# Stacked parameter name -> timm key suffix inside ``blocks.{j}.`` ("norm1_w" -> "norm1.weight", ...).
BLOCK_KEYS: dict[str, str] = {
    f"{m.name}_{part}": key
    for m in BLOCK_MODULES for part, key in (("w", m.weight_key()), ("b", m.bias_key()))
}

# Parameters outside the blocks: our name -> timm key.
STEM_KEYS: dict[str, str] = {
    "patch_w": "patch_embed.proj.weight", "patch_b": "patch_embed.proj.bias",
    "pos_embed": "pos_embed",
    "fc_norm_w": "fc_norm.weight", "fc_norm_b": "fc_norm.bias",
    "head_w": "head.weight", "head_b": "head.bias",
}


class Learngene(nn.Module):
    """Learngene parameters: ``blocks[name]`` is (depth, ...) for each kind in :data:`BLOCK_KEYS`,
    plus the stem and head tensors of :data:`STEM_KEYS` as attributes.

    A new learngene gets timm's ordinary random ViT initialization (the paper's choice).
    """

    def __init__(self, cfg: LearngeneConfig, state: Mapping[str, Tensor] | None = None) -> None:
        super().__init__()
        self.cfg = cfg
        if state is None:
            state = build_vit(cfg, cfg.embed_dim, cfg.depth).state_dict()
        expected = timm_shapes(cfg)
        _check_state(state, expected)
        for name, key in STEM_KEYS.items():
            setattr(self, name, nn.Parameter(state[key].detach().clone().float()))
        self.blocks = nn.ParameterDict({
            name: nn.Parameter(torch.stack([state[f"blocks.{j}.{key}"].detach().float()
                                            for j in range(cfg.depth)]))
            for name, key in BLOCK_KEYS.items()
        })

    @classmethod
    def from_timm(cls, cfg: LearngeneConfig, model_or_state: nn.Module | Mapping[str, Tensor]) -> "Learngene":
        """Start from an existing timm ViT (module or state dict) whose shape matches ``cfg``.

        A module is also checked for what its tensors do not show: its head count (4 heads of 8
        have the very shapes of 2 heads of 16, and compute another network) and its class token."""
        if isinstance(model_or_state, nn.Module):
            learngene = cls(cfg, model_or_state.state_dict())  # the shapes first: their message is the precise one
            _check_architecture(cfg, model_or_state)
            return learngene
        if not isinstance(model_or_state, Mapping):  # None is the constructor's "new random learngene"
            raise BundleError(f"Learngene.from_timm takes a timm ViT or its state dict, got "
                              f"{type(model_or_state).__name__}")
        return cls(cfg, model_or_state)

    @classmethod
    def from_checkpoint(cls, cfg: LearngeneConfig, path: str | Path) -> "Learngene":
        """Load a timm ViT checkpoint file (.safetensors, or a torch file holding a state dict)."""
        state = read_state_dict(path, "learngene checkpoint", BundleError)
        return cls(cfg, state)

    def timm_state_dict(self) -> dict[str, Tensor]:
        """The learngene in timm's per-block key layout."""
        state = {key: getattr(self, name).detach() for name, key in STEM_KEYS.items()}
        for name, key in BLOCK_KEYS.items():
            for j in range(self.cfg.depth):
                state[f"blocks.{j}.{key}"] = self.blocks[name][j].detach()
        return state

    def to_timm(self) -> nn.Module:
        """A standalone timm ViT with the learngene's weights (the learngene as a network of its own)."""
        model = build_vit(self.cfg, self.cfg.embed_dim, self.cfg.depth)
        model.load_state_dict(self.timm_state_dict(), strict=True)
        return model


def _check_architecture(cfg: LearngeneConfig, model: nn.Module) -> None:
    blocks = getattr(model, "blocks", None)
    heads = getattr(getattr(blocks[0], "attn", None), "num_heads", None) if blocks else None
    if heads is not None and heads != cfg.num_heads:
        raise BundleError(f"the timm ViT has {heads} heads per block; the learngene configuration has {cfg.num_heads} "
                          f"(embed_dim {cfg.embed_dim} / head_dim {cfg.head_dim}): same tensor shapes, another network")
    if getattr(model, "cls_token", None) is not None:
        raise BundleError("the timm ViT has a class token; the learngene's ViT has none (class_token=False, average "
                          "pooling)")


def timm_shapes(cfg: LearngeneConfig) -> dict[str, tuple[int, ...]]:
    """Shape of every timm key of the learngene, computed from the configuration alone."""
    d = cfg.embed_dim
    per_block = block_shapes(d, cfg.mlp_hidden(d))
    shapes = {
        "patch_embed.proj.weight": (d, cfg.in_chans, cfg.patch_size, cfg.patch_size),
        "patch_embed.proj.bias": (d,),
        "pos_embed": (1, cfg.num_patches, d),
        "fc_norm.weight": (d,), "fc_norm.bias": (d,),
        "head.weight": (cfg.num_classes, d), "head.bias": (cfg.num_classes,),
    }
    for j in range(cfg.depth):
        shapes.update({f"blocks.{j}.{k}": s for k, s in per_block.items()})
    return shapes


def _check_state(state: Mapping[str, Tensor], expected: dict[str, tuple[int, ...]]) -> None:
    missing = sorted(set(expected) - set(state))
    if missing:
        raise BundleError(
            f"learngene checkpoint lacks {len(missing)} expected keys, e.g. {missing[:3]}; "
            "it must be a timm VisionTransformer state dict with class_token=False and fc_norm"
        )
    unexpected = sorted(set(state) - set(expected))
    if unexpected:
        raise BundleError(
            f"learngene checkpoint has {len(unexpected)} keys the learngene configuration does not "
            f"have, e.g. {unexpected[:3]}; its depth or layout differs from the configuration"
        )
    for key, shape in expected.items():
        if tuple(state[key].shape) != shape:
            raise BundleError(
                f"learngene checkpoint key {key!r} has shape {tuple(state[key].shape)}, but the "
                f"learngene configuration needs {shape}"
            )
