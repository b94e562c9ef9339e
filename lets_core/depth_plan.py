"""Depth plans: which Aux layer each Des layer copies."""

from __future__ import annotations

import operator
from collections.abc import Iterable, Mapping, Set
from typing import Sequence

from .config import LetsConfig, require_config
from .errors import DesSizeError


def auto_depth_plan(cfg: LetsConfig, depth: int) -> list[int]:
    """The automatic plan of ``depth`` Des layers over the distinct Aux configurations.

    There is one distinct configuration per tied run of ``tie_length`` Aux layers; their order is
    kept. With at least as many layers as configurations, each configuration gets the same number
    of copies, the remaining copies going to the middle configurations first (ties: the earlier
    one), and the k-th copy of a configuration uses the k-th Aux layer of its run (the last one
    once copies outnumber the run). With fewer layers, configurations are taken evenly spaced,
    always including the first and the last.

    >>> from lets_core import presets
    >>> auto_depth_plan(presets.paper(), 12)
    [0, 2, 4, 5, 6, 7, 8, 9, 10, 11, 12, 14]
    """
    require_config(cfg, LetsConfig, "auto_depth_plan")
    checked = as_integer(depth)
    if checked is None or checked < 1:
        raise DesSizeError(f"depth must be an integer >= 1, got {depth!r}")
    depth = checked
    runs, tie = cfg.num_rows, cfg.transform.tie_length
    if depth >= runs:
        copies = [depth // runs] * runs
        center = (runs - 1) / 2
        middle_first = sorted(range(runs), key=lambda r: (abs(r - center), r))
        for r in middle_first[: depth % runs]:
            copies[r] += 1
        return [r * tie + min(k, tie - 1) for r in range(runs) for k in range(copies[r])]
    if depth == 1:
        return [0]
    # Round half up of k (runs-1)/(depth-1), in integers; the step is >= 1, so no run repeats.
    chosen = [(2 * k * (runs - 1) + (depth - 1)) // (2 * (depth - 1)) for k in range(depth)]
    return [r * tie for r in chosen]


def check_plan(cfg: LetsConfig, plan: Sequence[int]) -> list[int]:
    """Validate an explicit plan: a non-empty list of Aux layer indices (repeats allowed)."""
    raw = list(ordered(plan, "a depth plan", "Aux layer indices (ints), one per Des layer"))
    if not raw:
        raise DesSizeError("a depth plan needs at least one Aux layer index, got an empty plan")
    checked = []
    for i, value in enumerate(raw):
        layer = as_integer(value)
        if layer is None or not 0 <= layer < cfg.aux_depth:
            raise DesSizeError(
                f"depth plan entry {i} is {value!r}; Aux layer indices must be integers in "
                f"[0, {cfg.aux_depth - 1}]"
            )
        checked.append(layer)
    return checked


def as_integer(value: object) -> int | None:
    """``value`` as a Python int when it is integer-like (int, numpy integer, integer 0-d tensor);
    None for anything else, bools included (True is not a layer count)."""
    if isinstance(value, bool):
        return None
    try:
        return operator.index(value)
    except TypeError:
        return None


def ordered(value: object, what: str, items: str) -> Iterable:
    """``value`` when it is an ordered collection of ``items`` (list, tuple, range, 1-D array or
    tensor, generator); a DesSizeError naming its type otherwise. A set iterates in an order of its
    own (``{6, 0}`` gave the plan [0, 6]) and cannot repeat an entry, a dict iterates its keys, and
    a string its characters: all three were taken silently for something the caller did not write."""
    if not isinstance(value, (Set, Mapping, str, bytes)):
        try:
            iter(value)  # type: ignore[call-overload]
            return value  # type: ignore[return-value]
        except TypeError:  # a number, a 0-d tensor or array
            pass
    raise DesSizeError(f"{what} must be an ordered sequence, such as a list or tuple, of {items}; got "
                       f"{type(value).__name__} {value!r:.60}")
