"""A Des-Net's weights as rows and columns of one generated Aux state.

Selecting rows of F is the same as selecting rows and columns of the widened weights:
E(F[S]) W E(F'[S'])^T is the submatrix of E(F) W E(F')^T on rows [0, d) + (d + S) and the matching
columns, and the depth mix with G acts entry by entry. So the full Aux state is generated once and
each Des-Net gathers its entries from it, instead of widening the learngene again per size. The
result equals the state :func:`lets_core.emit_des` generates, to float rounding.

The gather is index_select only, so it is differentiable: :func:`lets_core.emit_des_many`
runs it under ``no_grad`` to emit models, elastic stage 1 runs it with gradient to train the
Des-Nets through the learngene, F, G and pos_embed.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor

from .block_layout import BLOCK_MODULES
from .config import LetsConfig
from .depth_plan import auto_depth_plan
from .selection import WidthSelection, check_width, select_width, size_pair
from .width_depth import WidthTransform

def gather_des_state(cfg: LetsConfig, full: dict[str, Tensor], sel: WidthSelection,
                     plan: Sequence[int]) -> dict[str, Tensor]:
    """The Des state of ``sel`` and ``plan`` as index_select copies of the full Aux state ``full``.

    Every tensor is a fresh copy (repeated plan entries do not share storage) and carries the
    gradient of the entries it was taken from.
    """
    lg = cfg.learngene
    d, width, hidden = lg.embed_dim, cfg.aux_embed_dim, lg.mlp_hidden(lg.embed_dim)
    device = sel.residual.device

    def keep(old: int, new: Tensor) -> Tensor:
        return torch.cat([torch.arange(old, device=device), old + new])

    res = keep(d, sel.residual)
    unit_sets = []  # kept neurons of each selection unit
    for heads, mlp in zip(sel.heads, sel.mlp):
        attn = keep(d, (heads[:, None] * lg.head_dim + torch.arange(lg.head_dim, device=device)).reshape(-1))
        qkv = torch.cat([c * width + attn for c in range(3)])
        unit_sets.append({"res": res, "attn": attn, "qkv": qkv, "mlp": keep(hidden, mlp)})

    def take(t: Tensor, rows: Tensor | None, cols: Tensor | None) -> Tensor:
        if rows is not None:
            t = t.index_select(0, rows)
        if cols is not None:
            t = t.index_select(1, cols)
        return t.contiguous() if rows is not None or cols is not None else t.clone()

    state = {
        "pos_embed": full["pos_embed"].index_select(2, res),
        "patch_embed.proj.weight": full["patch_embed.proj.weight"].index_select(0, res),
        "patch_embed.proj.bias": full["patch_embed.proj.bias"].index_select(0, res),
        "fc_norm.weight": full["fc_norm.weight"].index_select(0, res),
        "fc_norm.bias": full["fc_norm.bias"].index_select(0, res),
        "head.weight": full["head.weight"].index_select(1, res),
        "head.bias": full["head.bias"].clone(),
    }
    tie = cfg.transform.tie_length
    for i, aux_layer in enumerate(plan):
        sets = unit_sets[cfg.unit_of_row(aux_layer // tie)]
        # Any Aux layer of the same tied run has the same weights; read the run's first one.
        src = (aux_layer // tie) * tie
        for m in BLOCK_MODULES:  # rows and columns by the neuron sets of the block layout
            r = sets[m.rows]
            c = None if m.cols is None else sets[m.cols]
            state[f"blocks.{i}.{m.weight_key()}"] = take(full[f"blocks.{src}.{m.weight_key()}"], r, c)
            state[f"blocks.{i}.{m.bias_key()}"] = take(full[f"blocks.{src}.{m.bias_key()}"], r, None)
    return state


def des_states(cfg: LetsConfig, width: WidthTransform, full: dict[str, Tensor],
               sizes: Sequence[tuple[int, int]], strategy: str) -> list[dict[str, Tensor]]:
    """One Des state per ``(heads, depth)`` in ``sizes``, gathered from ``full`` with gradient.

    Same rules as :func:`lets_core.emit_des`: ``strategy`` picks the new neurons (norm strategies
    rank the current F under ``no_grad``, once per width), the depth plan is the automatic one.
    """
    selections: dict[int, WidthSelection] = {}
    states = []
    for heads, depth in map(size_pair, sizes):
        new = check_width(cfg, heads)
        plan = auto_depth_plan(cfg, depth)
        if new not in selections:
            selections[new] = select_width(cfg, width, new, strategy)
        states.append(gather_des_state(cfg, full, selections[new], plan))
    return states
