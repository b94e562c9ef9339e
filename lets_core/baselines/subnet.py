"""Sub-networks of one plain timm ViT of the Aux-Net's shape: kept residual, head and MLP indices
and a list of layers. Weight selection (IMwLM) and the nested ViT both build Des-Nets this way;
they differ only in which indices they keep (evenly spaced vs. prefixes).

The gather is ``index_select`` only, so it is differentiable (the nested ViT trains its
sub-networks through it) and, without gradient, gives exact copies of the selected entries.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Sequence

import torch
from torch import Tensor

from ..config import LetsConfig
from ..depth_plan import as_integer, auto_depth_plan
from ..errors import DesSizeError

# Per-block tensors of timm's Block (qkv_bias=True, no LayerScale) and which index set each axis uses:
# "res" residual, "qkv" whole heads in q|k|v order, "heads" whole heads, "mlp" hidden neurons.
BLOCK_AXES: dict[str, tuple[str | None, ...]] = {
    "norm1.weight": ("res",), "norm1.bias": ("res",),
    "attn.qkv.weight": ("qkv", "res"), "attn.qkv.bias": ("qkv",),
    "attn.proj.weight": ("res", "heads"), "attn.proj.bias": ("res",),
    "norm2.weight": ("res",), "norm2.bias": ("res",),
    "mlp.fc1.weight": ("mlp", "res"), "mlp.fc1.bias": ("mlp",),
    "mlp.fc2.weight": ("res", "mlp"), "mlp.fc2.bias": ("res",),
}
# The tensors outside the blocks; the head's rows are classes (kept), its columns fc_norm's features.
STEM_AXES: dict[str, tuple[str | None, ...]] = {
    "pos_embed": (None, None, "res"),
    "patch_embed.proj.weight": ("res", None, None, None), "patch_embed.proj.bias": ("res",),
    "fc_norm.weight": ("res",), "fc_norm.bias": ("res",),
    "head.weight": (None, "res"), "head.bias": (None,),
}


@dataclass(frozen=True)
class SubNet:
    """Which entries of the large network a Des-Net keeps.

    residual: kept residual neurons (width = len(residual)); heads: kept heads (whole heads, so
    each brings head_dim q, k, v rows and proj columns); mlp: kept MLP hidden neurons; plan: the
    large network's layer behind each Des layer (repeats allowed). All ascending, the same in
    every layer, so a neuron index means one neuron everywhere.
    """

    residual: Tensor
    heads: Tensor
    mlp: Tensor
    plan: list[int]


def tie1_config(cfg: LetsConfig) -> LetsConfig:
    """``cfg`` with tie_length 1: every Aux layer is its own run.

    A plain ViT has no tied layers, so the LeTs depth-plan rule (lets-method.md, "Depth plan")
    applies to its layers one by one. aux_depth stays a multiple of (groups x 1) because it was
    one of (groups x tie_length), so this configuration is always valid.
    """
    return dataclasses.replace(cfg, transform=dataclasses.replace(cfg.transform, tie_length=1))


def layer_plan(cfg: LetsConfig, depth: int) -> list[int]:
    """The layers of a plain Aux-shaped ViT behind a Des-Net of ``depth`` blocks: LeTs's automatic
    depth plan with tie_length 1 (fewer layers: evenly spaced, first and last kept; more: each
    layer repeated, extra copies to the middle layers first)."""
    return auto_depth_plan(tie1_config(cfg), depth)


def check_heads(cfg: LetsConfig, heads: object, method: str) -> int:
    """``heads`` as an int in [1, Aux heads] (integer-likes such as numpy integers accepted, as
    emit_des does), or a DesSizeError naming the range."""
    count = as_integer(heads)
    if count is None or not 1 <= count <= cfg.aux_heads:
        raise DesSizeError(f"{method} selects sub-networks of the {cfg.aux_heads}-head Aux-shaped ViT: heads must be "
                           f"an integer in [1, {cfg.aux_heads}], got {heads!r}")
    return count


def sub_state(cfg: LetsConfig, full: dict[str, Tensor], sub: SubNet) -> dict[str, Tensor]:
    """The timm state dict of the Des-Net ``sub`` of the Aux-shaped ViT whose state is ``full``.

    Every tensor is an ``index_select`` of ``full``'s (carrying its gradient); layer j of the
    result comes from layer ``sub.plan[j]`` of ``full``.
    """
    hd, width = cfg.learngene.head_dim, cfg.aux_embed_dim
    device = full["pos_embed"].device
    heads = sub.heads.to(device)
    head_rows = (heads[:, None] * hd + torch.arange(hd, device=device)).reshape(-1)
    index = {"res": sub.residual.to(device), "heads": head_rows, "mlp": sub.mlp.to(device),
             "qkv": torch.cat([head_rows + c * width for c in range(3)])}

    def take(t: Tensor, axes: tuple[str | None, ...]) -> Tensor:
        for dim, axis in enumerate(axes):
            if axis is not None:
                t = t.index_select(dim, index[axis])
        return t

    out = {name: take(full[name], axes) for name, axes in STEM_AXES.items()}
    for j, layer in enumerate(sub.plan):
        for name, axes in BLOCK_AXES.items():
            out[f"blocks.{j}.{name}"] = take(full[f"blocks.{layer}.{name}"], axes)
    return out


def check_plain_state(cfg: LetsConfig, state: dict[str, Tensor], method: str) -> None:
    """Raise unless ``state`` holds exactly the tensors of a timm ViT of the Aux-Net's shape."""
    expected = set(STEM_AXES) | {f"blocks.{i}.{n}" for i in range(cfg.aux_depth) for n in BLOCK_AXES}
    if set(state) != expected:
        missing, extra = sorted(expected - set(state))[:4], sorted(set(state) - expected)[:4]
        raise ValueError(f"the {method} source is not a plain ViT of the Aux shape ({cfg.aux_embed_dim} wide, "
                         f"{cfg.aux_depth} blocks): missing {missing}, unexpected {extra}")


def des_dims(cfg: LetsConfig, heads: int) -> tuple[int, int, int]:
    """(residual width, head count, MLP hidden size) of a Des-Net with ``heads`` heads."""
    width = heads * cfg.learngene.head_dim
    return width, heads, cfg.learngene.mlp_hidden(width)


def prefix_subnet(cfg: LetsConfig, heads: int, plan: Sequence[int], device: torch.device | None = None) -> SubNet:
    """The first ``heads`` heads, the first heads x head_dim residual neurons and the first
    r x width MLP neurons (the nested ViT's sub-network)."""
    width, _, hidden = des_dims(cfg, heads)
    return SubNet(torch.arange(width, device=device), torch.arange(heads, device=device),
                  torch.arange(hidden, device=device), list(plan))
