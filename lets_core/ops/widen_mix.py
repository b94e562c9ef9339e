"""The op ``lets_core::widen_mix`` (a widening fused with the depth mix): schema, reference kernel,
argument checks, fake kernel, autograd formula, and the public wrappers :func:`widen_mix_linear`
and :func:`widen_mix_vector`. The order of its products and their cost model are in
``widen_mix_order.py``.

C++ twins: csrc/ops/widen_mix.{h,cpp} (checks, the chain for every device),
csrc/ops/widen_mix_order.h, csrc/ops/cpu/widen_mix_kernel.cpp, csrc/ops/cuda/widen_mix_kernel.cu.
Tests: tests/test_ops_widen_mix.py.
"""

from __future__ import annotations

import torch
from torch import Tensor

from . import _registry
from ._checks import check_mix_args, fail
from .group_mix import group_mix_reference, mix_grads
from .widen import bilinear_grads, check_bias, check_widen, growth, widen_reference
from .widen_mix_order import WidenMixOrder, WidenMixShape, choose_order, valid_orders

__all__ = ["widen_mix_linear", "widen_mix_vector"]  # the public wrappers, which lets_core.ops exports


def widen_mix_reference(weight: Tensor, f_out: Tensor | None, f_in: Tensor | None, coeff: Tensor,
                        order: int) -> tuple[Tensor, Tensor]:
    """Widening followed by the depth mix: ``group_mix(widen(W, F_out, F_in), coeff)``.

    ``order`` (a :class:`WidenMixOrder`) picks the association; every valid order gives the same
    rows, and the reference follows it so that the fallback does the compiled kernel's work.
    Returns the rows (R, C*(O/C+dO), I+dI) and the per-block partial product that was mixed (what
    the coefficient gradient reads; empty for MIX_FIRST, which mixes the weight itself).
    """
    if order == WidenMixOrder.BLOCKS:  # widen each block, then mix
        partial = widen_reference(weight, f_out, f_in)
        return group_mix_reference(partial, coeff), partial
    if order == WidenMixOrder.OUT_FIRST:  # output side per block, mix, input side per row
        partial = widen_reference(weight, f_out, None)
        return widen_reference(group_mix_reference(partial, coeff), None, f_in), partial
    if order == WidenMixOrder.IN_FIRST:  # input side per block, mix, output side per row
        partial = widen_reference(weight, None, f_in)
        return widen_reference(group_mix_reference(partial, coeff), f_out, None), partial
    # MIX_FIRST: mix the narrow blocks, then widen each row
    return widen_reference(group_mix_reference(weight, coeff), f_out, f_in), weight.new_empty(0)


def check_widen_mix(weight: Tensor, f_out: Tensor | None, f_in: Tensor | None, coeff: Tensor, order: int) -> None:
    """The twin of check_widen_mix in csrc/ops/widen_mix.cpp: the widening, the coefficients
    against the widened rows, then ``order`` among the valid ones for these factors."""
    op = "widen_mix"
    c, d_o, _ = check_widen(weight, f_out, f_in, op)
    check_mix_args(op, weight.shape[0], weight.shape[1] + c * d_o, coeff, weight)
    valid = valid_orders(WidenMixShape.of(weight, f_out, f_in, coeff))
    if order not in valid:
        allowed = ", ".join(f"{int(o)} ({o.name})" for o in valid)
        fail(op, f"order {order} is not valid for these factors; allowed: {allowed}")


_registry.define("widen_mix(Tensor weight, Tensor? f_out, Tensor? f_in, Tensor coeff, int order) -> (Tensor, Tensor)",
                 check_widen_mix, widen_mix_reference, autocast=True)


@torch.library.register_fake("lets_core::widen_mix")
def _widen_mix_fake(weight: Tensor, f_out: Tensor | None, f_in: Tensor | None, coeff: Tensor,
                    order: int) -> tuple[Tensor, Tensor]:
    b, o, i = weight.shape
    c, d_o, d_i = growth(f_out, f_in)
    rows = weight.new_empty(coeff.shape[0], o + c * d_o, i + d_i)
    partial = {WidenMixOrder.BLOCKS: (b, o + c * d_o, i + d_i), WidenMixOrder.OUT_FIRST: (b, o + c * d_o, i),
               WidenMixOrder.IN_FIRST: (b, o, i + d_i)}.get(order, (0,))  # MIX_FIRST: empty
    return rows, weight.new_empty(partial)


# Autograd ------------------------------------------------------------------------------------------
#
# widen_mix is a chain of widenings and one group_mix, associated as its order says. The backward
# walks the same chain in reverse with bilinear_grads (widen.py) and mix_grads (group_mix.py). Both
# tensors it reads come from the forward: the per-block partial product (the op's second output,
# as native_layer_norm returns its statistics) and the mixed intermediate, which the rows already
# hold in their narrow rows and/or columns (E(F)'s leading block is the identity). The partial
# product is a differentiable output, so its gradient (from double backward) joins the chain at
# its place.

def _narrow_part(out: Tensor, f_out: Tensor | None, f_in: Tensor | None, rows: bool, cols: bool) -> Tensor:
    """The leading (narrow) rows of every chunk and/or the leading columns of a widened stack."""
    c, d_o, d_i = growth(f_out, f_in)
    r, n_rows, n_cols = out.shape
    if rows and d_o:
        out = out.reshape(r, c, n_rows // c, n_cols)[:, :, : n_rows // c - d_o].reshape(r, c * (n_rows // c - d_o),
                                                                                       n_cols)
    if cols and d_i:
        out = out[:, :, : n_cols - d_i]
    return out


def _widen_mix_setup(ctx, inputs, output) -> None:
    # The partial product rarely receives a gradient; without this, autograd would hand backward
    # a zero tensor of its size (a fill and an add per call, ~20% of a mid-size generation step).
    ctx.set_materialize_grads(False)
    weight, f_out, f_in, coeff, order = inputs
    ctx.order = WidenMixOrder(order)
    rows, partial = output
    blocks = ctx.order == WidenMixOrder.BLOCKS
    ctx.save_for_backward(weight, f_out, f_in, coeff, None if blocks else rows, partial)


def _add(a: Tensor | None, b: Tensor | None) -> Tensor | None:
    return b if a is None else a if b is None else a + b


def _widen_mix_backward(ctx, grad: Tensor | None, grad_partial: Tensor | None):
    weight, f_out, f_in, coeff, rows, partial = ctx.saved_tensors
    need_w, need_out, need_in, need_c, _ = ctx.needs_input_grad
    order = ctx.order
    g_w = g_out = g_in = g_c = None
    if order == WidenMixOrder.MIX_FIRST:  # rows = widen(mix(W), Fo, Fi); no partial product
        if grad is not None:
            need_mixed = need_w or need_c
            mixed = _narrow_part(rows, f_out, f_in, rows=True, cols=True)
            g_mixed, g_out, g_in = bilinear_grads(grad, mixed, f_out, f_in, need_mixed, need_out, need_in)
            if need_mixed:
                g_w, g_c = mix_grads(g_mixed, weight, coeff, need_w, need_c)
        return g_w, g_out, g_in, g_c, None
    # rows = finish(mix(partial)) and partial = start(W), with the factors of each step per order.
    start_out, start_in, finish_out, finish_in = {
        WidenMixOrder.BLOCKS: (f_out, f_in, None, None),
        WidenMixOrder.OUT_FIRST: (f_out, None, None, f_in),
        WidenMixOrder.IN_FIRST: (None, f_in, f_out, None),
    }[order]
    need_start = need_w or (need_out and start_out is not None) or (need_in and start_in is not None)
    g_part = None
    if grad is not None:
        g_mixed = grad
        if order != WidenMixOrder.BLOCKS:
            mixed = _narrow_part(rows, f_out, f_in, rows=finish_out is not None, cols=finish_in is not None)
            g_mixed, g_fo, g_fi = bilinear_grads(
                grad, mixed, finish_out, finish_in, need_start or need_c,
                need_out and finish_out is not None, need_in and finish_in is not None)
            g_out = g_fo if finish_out is not None else None
            g_in = g_fi if finish_in is not None else None
        if g_mixed is not None:
            g_part, g_c = mix_grads(g_mixed, partial, coeff, need_start, need_c)
    if need_start:
        g_part = _add(g_part, grad_partial)
    if g_part is not None:
        g_w, g_so, g_si = bilinear_grads(g_part, weight, start_out, start_in, need_w,
                                         need_out and start_out is not None, need_in and start_in is not None)
        g_out, g_in = _add(g_out, g_so), _add(g_in, g_si)
    return g_w, g_out, g_in, g_c, None


torch.library.register_autograd("lets_core::widen_mix", _widen_mix_backward, setup_context=_widen_mix_setup)


# Public wrappers --------------------------------------------------------------------------------------

def _order(weight: Tensor, f_out: Tensor | None, f_in: Tensor | None, coeff: Tensor) -> WidenMixOrder:
    """The cheapest order for these arguments. Arguments the op refuses may have no shape to cost
    (a 2-D weight, 0-d coefficients, no chunks): then BLOCKS, and the op names the problem."""
    try:
        return choose_order(WidenMixShape.of(weight, f_out, f_in, coeff))
    except (ValueError, IndexError, ZeroDivisionError):
        return WidenMixOrder.BLOCKS


def _widen_mix(weight: Tensor, f_out: Tensor | None, f_in: Tensor | None, coeff: Tensor) -> Tensor:
    """The op's rows, in the cheapest order (passed as a plain int, as the schema declares)."""
    order = int(_order(weight, f_out, f_in, coeff))
    return _registry.lets_core.widen_mix(weight, f_out, f_in, coeff, order)[0]


def widen_mix_linear(weight: Tensor, bias: Tensor | None, f_out: Tensor | None, f_in: Tensor | None,
                     coeff: Tensor, bias_coeff: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
    """Widen a stack of linear layers and mix each group: one distinct Aux layer per coefficient row.

    Row r of the result is ``sum_m coeff[r, m] * E(F_out_j) W_j E(F_in_j)^T`` with
    j = s * group(r) + m, i.e. ``group_mix(widen_linear(...), coeff)``, computed in the cheapest
    order the shapes allow (``widen_mix_order.choose_order``: a factor shared by all blocks is
    applied once per row after the mix instead of once per block before it). The bias is widened
    with F_out and mixed with ``bias_coeff``. Shapes as in :func:`widen_linear` and
    :func:`group_mix`; the op checks the arguments.

    Example:
        >>> import torch, lets_core.ops as ops
        >>> w, f_e = torch.randn(4, 3, 3), torch.rand(1, 2, 3)
        >>> out, _ = ops.widen_mix_linear(w, None, f_e[:, None], f_e, torch.rand(4, 2))
        >>> out.shape  # 4 rows of 2 groups, each widened from 3 to 5
        torch.Size([4, 5, 5])
    """
    out = _widen_mix(weight, f_out, f_in, coeff)
    if bias is None:
        return out, None
    if bias_coeff is None:
        raise ValueError("bias_coeff is required when a bias is given")
    check_bias(weight, bias)
    # Row r of the weights and row r of the biases are one Aux layer: same rows, groups and chunks.
    if tuple(bias_coeff.shape) != tuple(coeff.shape):
        raise ValueError(f"bias_coeff must have coeff's shape {tuple(coeff.shape)} (one bias per mixed weight "
                         f"row), got {tuple(bias_coeff.shape)}")
    return out, widen_mix_vector(bias, f_out, bias_coeff)


def widen_mix_vector(vec: Tensor, f: Tensor | None, coeff: Tensor) -> Tensor:
    """:func:`widen_vector` then :func:`group_mix`, as one op: ``vec`` (L, N) -> (R, N + C dN)."""
    if vec.dim() != 2:
        raise ValueError(f"vec must be (blocks, size), got shape {tuple(vec.shape)}")
    return _widen_mix(vec.unsqueeze(-1), f, None, coeff).squeeze(-1)
