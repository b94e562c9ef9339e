"""Emitting many Des-Nets at once from one generation of the Aux-Net's weights.

Selecting rows of F is the same as selecting rows and columns of the widened weights:
E(F[S]) W E(F'[S'])^T is the submatrix of E(F) W E(F')^T on rows [0, d) + (d + S) and the matching
columns, and the depth mix with G acts entry by entry. So the full Aux state is generated once and
each Des-Net gathers its entries from it, instead of widening the learngene again per size.
The result equals :func:`lets_core.emit_des` to float rounding (tests check it).
"""

from __future__ import annotations

from typing import Iterable, Sequence

import torch
from torch import Tensor
from timm.models.vision_transformer import VisionTransformer

from .auxnet import AuxNet
from .des import build_des, resolve_plan
from .selection import WidthSelection, check_width, select_width

# timm module -> (index set of the output rows, index set of the input columns) by role:
# "res" residual stream, "attn" the group's attention neurons (q|k|v rows, proj columns),
# "mlp" the group's MLP neurons, None for "not indexed".
_BLOCK_LAYOUT = {
    "norm1": ("res", None), "norm2": ("res", None),
    "attn.qkv": ("qkv", "res"), "attn.proj": ("res", "attn"),
    "mlp.fc1": ("mlp", "res"), "mlp.fc2": ("res", "mlp"),
}


def emit_des_many(aux: AuxNet, sizes: Iterable[tuple[int, int]], strategy: str = "continuous",
                  plans: Sequence[Sequence[int] | None] | None = None,
                  drop_path_rate: float = 0.0) -> list[VisionTransformer]:
    """Emit one Des-Net per ``(heads, depth)`` in ``sizes``, generating the Aux weights only once.

    ``plans`` optionally gives an explicit depth plan per size (None entries use the automatic
    plan). Each returned model is the one :func:`lets_core.emit_des` would return.

    Example:
        >>> import lets_core
        >>> aux = lets_core.AuxNet(lets_core.presets.tiny())
        >>> [m.embed_dim for m in lets_core.emit_des_many(aux, [(2, 4), (4, 8)])]
        [32, 64]
    """
    sizes = [(h, l) for h, l in sizes]
    plans = list(plans) if plans is not None else [None] * len(sizes)
    if len(plans) != len(sizes):
        raise ValueError(f"got {len(plans)} plans for {len(sizes)} sizes; give one plan (or None) per size")
    cfg = aux.cfg
    requests = [(check_width(cfg, h), resolve_plan(cfg, l if p is None else None, p)) for (h, l), p in zip(sizes, plans)]
    models = []
    with torch.no_grad():
        full = aux.generate()
        selections: dict[int, WidthSelection] = {}
        for new, plan in requests:
            if new not in selections:
                selections[new] = select_width(cfg, aux.width, new, strategy)
            state = _gather(aux, full, selections[new], plan)
            models.append(build_des(cfg, cfg.learngene.embed_dim + new, len(plan), state, drop_path_rate))
    return models


def _gather(aux: AuxNet, full: dict[str, Tensor], sel: WidthSelection, plan: Sequence[int]) -> dict[str, Tensor]:
    """The Des state of ``sel`` and ``plan`` as index_select copies of the full Aux state."""
    cfg = aux.cfg
    lg = cfg.learngene
    d, width, hidden = lg.embed_dim, cfg.aux_embed_dim, lg.mlp_hidden(lg.embed_dim)
    device = sel.residual.device

    def keep(old: int, new: Tensor) -> Tensor:
        return torch.cat([torch.arange(old, device=device), old + new])

    res = keep(d, sel.residual)
    group_sets = []
    for heads, mlp in zip(sel.heads, sel.mlp):
        attn = keep(d, (heads[:, None] * lg.head_dim + torch.arange(lg.head_dim, device=device)).reshape(-1))
        qkv = torch.cat([c * width + attn for c in range(3)])
        group_sets.append({"res": res, "attn": attn, "qkv": qkv, "mlp": keep(hidden, mlp)})

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
        sets = group_sets[cfg.group_of_row(aux_layer // tie)]
        # Any Aux layer of the same tied run has the same weights; read the run's first one.
        src = (aux_layer // tie) * tie
        for module, (rows, cols) in _BLOCK_LAYOUT.items():
            r = sets[rows]
            c = None if cols is None else sets[cols]
            state[f"blocks.{i}.{module}.weight"] = take(full[f"blocks.{src}.{module}.weight"], r, c)
            state[f"blocks.{i}.{module}.bias"] = take(full[f"blocks.{src}.{module}.bias"], r, None)
    return state
