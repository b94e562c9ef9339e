"""The order of widen_mix's products: which orders are exact for given shapes, what each costs,
and the cheapest one (the cost model the public wrappers use).

``widen_mix`` computes, for every row r of the coefficients (one distinct Aux layer),

    out[r] = sum_m coeff[r, m] * E(F_out_j) W_j E(F_in_j)^T,      j = s * group(r) + m.

The widening is linear, so the product chain can be associated in four orders. They give the same
result and differ in work and in what they keep in memory:

- ``BLOCKS``: widen every block completely, then mix the wide blocks (always valid). It pays when
  there are more distinct rows than blocks, since each block is widened only once.
- ``OUT_FIRST``: widen every block on the output side only, mix, then widen each row on the input
  side. Valid when F_in is shared by all blocks (or absent): q, k, v, fc1 in LeTs.
- ``IN_FIRST``: the mirror image, valid when F_out is shared (or absent): proj, fc2, LayerNorms.
- ``MIX_FIRST``: mix the narrow blocks, then widen each row once. Valid when both factors are
  shared (or absent): LayerNorm vectors and the biases of proj and fc2.

Mixing before an output widening is only equivalent when each coefficient chunk covers whole
widening chunks (coefficient chunks dividing the factor's chunks), which ``valid_orders`` checks.

Costs are multiply-adds of the products and the mixes, from the shapes alone. The op itself runs
whichever order it is given; :func:`choose_order` is what the public wrappers use. C++ twin of the
enum and of the validity rule: csrc/ops/widen_mix_order.h.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from torch import Tensor


class WidenMixOrder(enum.IntEnum):
    """The ``order`` argument of ``lets_core::widen_mix`` (values and names as in widen_mix_order.h)."""

    BLOCKS = 0
    OUT_FIRST = 1
    IN_FIRST = 2
    MIX_FIRST = 3


@dataclass(frozen=True)
class WidenMixShape:
    """Sizes of one widen_mix: L blocks in groups of s, R output rows, C output chunks of Oc rows,
    I columns, dO new rows per chunk, dI new columns, K coefficient chunks, and whether each
    factor is shared by all blocks (absent, stored once, or only one block: is_shared_factor in
    widen_mix_order.h)."""

    L: int
    R: int
    s: int
    C: int
    Oc: int
    I: int  # noqa: E741  (the spec's name for the input width)
    dO: int
    dI: int
    K: int
    out_shared: bool
    in_shared: bool

    @classmethod
    def of(cls, weight: Tensor, f_out: Tensor | None, f_in: Tensor | None, coeff: Tensor) -> "WidenMixShape":
        L, O, I = weight.shape  # noqa: E741
        C, dO = (1, 0) if f_out is None else (f_out.shape[1], f_out.shape[2])
        dI = 0 if f_in is None else f_in.shape[1]
        return cls(L=L, R=coeff.shape[0], s=coeff.shape[-1], C=C, Oc=O // C, I=I, dO=dO, dI=dI,
                   K=coeff.shape[1] if coeff.dim() == 3 else 1,
                   out_shared=f_out is None or f_out.shape[0] == 1 or L == 1,
                   in_shared=f_in is None or f_in.shape[0] == 1 or L == 1)


def valid_orders(sh: WidenMixShape) -> list[WidenMixOrder]:
    """The orders that compute ``widen_mix`` exactly for these shapes, BLOCKS always among them."""
    orders = [WidenMixOrder.BLOCKS]
    if sh.in_shared:
        orders.append(WidenMixOrder.OUT_FIRST)
    # Mixing the narrow rows before the output widening needs the coefficient chunks to be unions
    # of widening chunks, so that each new row is mixed with its own chunk's coefficients.
    mix_before_out_ok = sh.dO == 0 or sh.C % sh.K == 0
    if sh.out_shared and mix_before_out_ok:
        orders.append(WidenMixOrder.IN_FIRST)
        if sh.in_shared:
            orders.append(WidenMixOrder.MIX_FIRST)
    return orders


def widen_cost(n: int, sh: WidenMixShape) -> int:
    """Multiply-adds of widening n blocks on both sides (csrc/ops/widen.cpp's corner reuse included)."""
    per_chunk = sh.dO * sh.Oc * sh.I + sh.Oc * sh.I * sh.dI + sh.dO * min(sh.I, sh.Oc) * sh.dI
    return n * sh.C * per_chunk


def order_cost(order: WidenMixOrder, sh: WidenMixShape) -> int:
    """Multiply-adds of one order: its products plus its mixes (s per output element mixed)."""
    wide_rows, wide_cols = sh.C * (sh.Oc + sh.dO), sh.I + sh.dI
    narrow_rows = sh.C * sh.Oc
    if order == WidenMixOrder.BLOCKS:
        return widen_cost(sh.L, sh) + sh.R * sh.s * wide_rows * wide_cols
    if order == WidenMixOrder.OUT_FIRST:
        return (sh.L * sh.C * sh.dO * sh.Oc * sh.I + sh.R * sh.s * wide_rows * sh.I
                + sh.R * wide_rows * sh.I * sh.dI)
    if order == WidenMixOrder.IN_FIRST:
        return (sh.L * narrow_rows * sh.I * sh.dI + sh.R * sh.s * narrow_rows * wide_cols
                + sh.R * sh.C * sh.dO * sh.Oc * wide_cols)
    return sh.R * sh.s * narrow_rows * sh.I + widen_cost(sh.R, sh)


def choose_order(sh: WidenMixShape) -> WidenMixOrder:
    """The cheapest valid order; ties go to the order that keeps fewer intermediates alive
    (MIX_FIRST, then OUT_FIRST / IN_FIRST, then BLOCKS)."""
    preference = [WidenMixOrder.MIX_FIRST, WidenMixOrder.OUT_FIRST, WidenMixOrder.IN_FIRST, WidenMixOrder.BLOCKS]
    return min(valid_orders(sh), key=lambda o: (order_cost(o, sh), preference.index(o)))
