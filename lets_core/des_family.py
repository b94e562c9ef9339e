"""Emitting many Des-Nets at once from one generation of the Aux-Net's weights.

The full Aux state is generated once and each Des-Net gathers its entries from it
(:func:`lets_core.des_state.gather_des_state`), instead of widening the learngene again per size.
The result equals :func:`lets_core.emit_des` to float rounding (tests check it).
"""

from __future__ import annotations

from typing import Iterable, Sequence

import torch
from timm.models.vision_transformer import VisionTransformer

from .auxnet import AuxNet, as_aux_net
from .depth_plan import ordered
from .des import build_des, full_precision, resolve_plan, warn_other_strategy
from .des_state import gather_des_state
from .input_norm import recorded_input_norm
from .selection import WidthSelection, check_strategy, check_width, select_width, size_pair


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
    aux = as_aux_net(aux, "emit_des_many")
    # Ordered: the i-th model is the i-th size's, and plans pair with sizes by position.
    sizes = [size_pair(entry) for entry in ordered(sizes, "sizes", "(heads, depth) pairs")]
    check_strategy(strategy)
    warn_other_strategy(aux, strategy, "emit_des_many")
    if plans is None:
        plans = [None] * len(sizes)
    else:
        plans = list(ordered(plans, "plans", "depth plans (or None), one per size"))
    if len(plans) != len(sizes):
        raise ValueError(f"got {len(plans)} plans for {len(sizes)} sizes; give one plan (or None) per size")
    cfg = aux.cfg
    # The depth is checked against an explicit plan, as emit_des(heads, depth, plan=...) does.
    requests = [(check_width(cfg, h), resolve_plan(cfg, l, p)) for (h, l), p in zip(sizes, plans)]
    models = []
    # inference_mode(False): ordinary tensors even under a caller's inference_mode (see emit_des).
    with torch.inference_mode(False), torch.no_grad(), full_precision(aux):
        full = aux.generate()
        selections: dict[int, WidthSelection] = {}
        for new, plan in requests:
            if new not in selections:
                selections[new] = select_width(cfg, aux.width, new, strategy)
            state = gather_des_state(cfg, full, selections[new], plan)
            models.append(build_des(cfg, cfg.learngene.embed_dim + new, len(plan), state, drop_path_rate,
                                    recorded_input_norm(aux)))
    return models
