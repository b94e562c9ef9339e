"""Choosing which new neurons (rows of F) a Des-Net keeps.

One index means one neuron everywhere it appears, which fixes the selection units:
- one residual set S_e: rows of F_e and of F_cls, and Aux pos_embed columns d + S_e;
- per selection unit, whole new heads: rows of F_q, F_k, F_v of every F set in the unit
  (and, through F_v, proj's input columns);
- per selection unit, MLP neurons: rows of F_ffn of every F set in the unit.

A selection unit is the F sets one Aux layer is built from (``LetsConfig.f_sets_of_unit``): in
the "lets" layout a group (the layer mixes the group's widened learngene blocks, so their new
neurons must be the same ones), in the "ligo" layout one distinct Aux layer (its own F set).

Norm strategies rank a unit by the norm of all the F rows it selects. For S_e these are its rows
of F_e and F_cls; the pos_embed columns are not part of the ranking (they are not rows of F).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from . import ops
from .config import LetsConfig
from .depth_plan import as_integer
from .errors import DesSizeError
from .generation import WidthFactors
from .width_depth import WidthTransform

STRATEGIES = ("continuous", "top-l2", "bottom-l2", "top-l1", "bottom-l1")


@dataclass
class WidthSelection:
    """Kept new neurons, ascending: ``residual`` (n,), per selection unit ``heads`` (n/head_dim,)
    and ``mlp`` (r n,)."""

    residual: Tensor
    heads: list[Tensor]
    mlp: list[Tensor]


def size_pair(entry: object) -> tuple[object, object]:
    """One Des size request as its (heads, depth) pair; anything else is refused by name."""
    try:
        heads, depth = entry  # type: ignore[misc]
    except (TypeError, ValueError):
        raise DesSizeError(f"each Des size must be a (heads, depth) pair, got {entry!r}") from None
    return heads, depth


def integer_size_pair(entry: object) -> tuple[int, int]:
    """One Des size request as a pair of Python ints; int() would truncate 2.9 heads to 2 and take
    strings, so anything but integer-likes is refused by name."""
    heads, depth = (as_integer(v) for v in size_pair(entry))
    if heads is None or depth is None:
        raise DesSizeError(f"each Des size must be a pair of integers (heads, depth), got {entry!r}")
    return heads, depth


def check_strategy(strategy: str) -> str:
    if strategy not in STRATEGIES:
        raise DesSizeError(f"unknown selection strategy {strategy!r}; allowed: {list(STRATEGIES)}")
    return strategy


def check_width(cfg: LetsConfig, heads: int) -> int:
    """Validate a head count; returns the number n of new residual neurons."""
    lg = cfg.learngene
    lo, hi = lg.num_heads, cfg.aux_heads
    count = as_integer(heads)
    if count is None or not lo <= count <= hi:
        raise DesSizeError(
            f"heads={heads!r} gives no valid width: heads must be an integer in [{lo}, {hi}] "
            f"(width = heads x head_dim {lg.head_dim}, between the learngene width {lg.embed_dim} "
            f"and the Aux width {cfg.aux_embed_dim})"
        )
    return count * lg.head_dim - lg.embed_dim


def select_width(cfg: LetsConfig, width: WidthTransform, new: int, strategy: str) -> WidthSelection:
    """Pick ``new`` residual neurons (a multiple of head_dim) with ``strategy``."""
    check_strategy(strategy)
    lg = cfg.learngene
    head_dim, new_mlp = lg.head_dim, lg.mlp_hidden(new)
    units = [cfg.f_sets_of_unit(u) for u in range(cfg.num_selection_units)]
    if strategy == "continuous" or new == 0:  # keeping nothing needs no ranking
        device = width.f_e.device
        return WidthSelection(
            residual=torch.arange(new, device=device),
            heads=[torch.arange(new // head_dim, device=device) for _ in units],
            mlp=[torch.arange(new_mlp, device=device) for _ in units],
        )
    largest = strategy.startswith("top")
    p = 1 if strategy.endswith("l1") else 2
    # Each unit is ranked over a stack of the matrices whose rows it owns (select_by_norm's 3-D
    # form): for heads and MLP neurons these stacks are views of the F banks, so nothing is copied.
    with torch.no_grad():
        residual = ops.select_by_norm(torch.stack([width.f_e, width.f_cls]), 1, new, p, largest)[1]
        heads, mlp = [], []
        for sets in units:
            qkv = width.f_qkv[sets.start:sets.stop]  # (sets, 3, D-d, d): q, k, v of the unit's F sets
            heads.append(ops.select_by_norm(qkv.flatten(0, 1), head_dim, new // head_dim, p, largest)[1])
            ffn = width.f_ffn[sets.start:sets.stop]  # (sets, r(D-d), r d)
            mlp.append(ops.select_by_norm(ffn, 1, new_mlp, p, largest)[1])
    return WidthSelection(residual=residual, heads=heads, mlp=mlp)


def selected_factors(cfg: LetsConfig, width: WidthTransform, sel: WidthSelection) -> WidthFactors:
    """The F rows of a selection, each F set using its selection unit's head and MLP sets."""
    head_dim = cfg.learngene.head_dim
    set_unit = [u for u in range(cfg.num_selection_units) for _ in cfg.f_sets_of_unit(u)]
    head_rows = [_expand_heads(h, head_dim) for h in sel.heads]
    f_qkv = torch.stack([width.f_qkv[k].index_select(1, head_rows[u]) for k, u in enumerate(set_unit)])
    f_ffn = torch.stack([width.f_ffn[k].index_select(0, sel.mlp[u]) for k, u in enumerate(set_unit)])
    return WidthFactors(
        f_e=width.f_e.index_select(0, sel.residual),
        f_qkv=f_qkv,
        f_ffn=f_ffn,
        f_cls=width.f_cls.index_select(0, sel.residual),
    )


def _expand_heads(heads: Tensor, head_dim: int) -> Tensor:
    return (heads.unsqueeze(1) * head_dim + torch.arange(head_dim, device=heads.device)).reshape(-1)
