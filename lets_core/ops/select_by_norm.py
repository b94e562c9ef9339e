"""The op ``lets_core::select_by_norm`` (rank row units by norm, keep k, gather them): schema,
reference kernel, argument checks, fake kernel, autograd formula and the public wrapper
:func:`select_by_norm`.

C++ twins: csrc/ops/select_by_norm.{h,cpp} (checks, ranking, output),
csrc/ops/cpu/select_by_norm_kernel.cpp, csrc/ops/cuda/select_by_norm_kernel.cu.
Tests: tests/test_ops_select_by_norm.py.
"""

from __future__ import annotations

import torch
from torch import Tensor

from . import _registry
from ._checks import check_float, fail

__all__ = ["select_by_norm"]  # the public wrappers, which lets_core.ops exports


def unit_scores(matrix: Tensor, unit: int, p: int) -> Tensor:
    """Per unit of ``unit`` consecutive rows (of every matrix of a (M, N, K) stack, or of one
    (N, K) matrix): sum of |x| (p=1) or of x^2 (p=2), which orders units like their Lp norm.

    Each term |x| or x^2 in float32 (float64 for float64 input), the same in every kernel; their
    sum accumulated in float64 and rounded to float32, the precision the ranking uses. Units whose
    scores agree to float32 precision then tie (lower index first) whatever the summation order,
    so the compiled kernels, which sum in other orders, rank exactly as this reference does. With
    float32 sums they did not: the default F init makes every row sum to 1, every L1 score was a
    tie up to rounding noise, and the two builds chose different neurons for "top-l1" Des-Nets."""
    stack = matrix if matrix.dim() == 3 else matrix.unsqueeze(0)
    m, rows, cols = stack.shape
    flat = stack.reshape(m, rows // unit, unit * cols).to(torch.promote_types(matrix.dtype, torch.float32))
    terms = flat.abs() if p == 1 else flat.square()
    return terms.sum(dim=(0, 2), dtype=torch.float64).to(torch.float32)


def select_by_norm_reference(matrix: Tensor, unit: int, k: int, p: int, largest: bool) -> tuple[Tensor, Tensor]:
    """Rank units of ``unit`` consecutive rows of ``matrix`` by their Lp norm, keep k.

    ``matrix`` is (N, K), or a stack (M, N, K) of matrices whose rows with the same index belong
    to the same neuron: a unit then owns its rows in all M matrices and its norm covers them all.
    Returns the chosen rows ((k*unit, K), or (M, k*unit, K) for a stack) and the chosen unit
    indices (k,), both in ascending index order. Ties keep the lower index first, so the result
    is deterministic.
    """
    score = unit_scores(matrix, unit, p)
    order = torch.sort(score, descending=largest, stable=True).indices[:k]
    idx = torch.sort(order).values
    rows = (idx.unsqueeze(1) * unit + torch.arange(unit, device=matrix.device)).reshape(-1)
    return matrix.index_select(-2, rows), idx


def check_select_by_norm(matrix: Tensor, unit: int, k: int, p: int, largest: bool) -> None:  # noqa: ARG001
    """The twin of check_select_by_norm in csrc/ops/select_by_norm.cpp."""
    op = "select_by_norm"
    check_float(matrix, "matrix", op)
    if matrix.dim() not in (2, 3):
        fail(op, f"matrix must be (rows, cols) or a stack (matrices, rows, cols), got shape {tuple(matrix.shape)}")
    rows = matrix.shape[-2]
    if unit < 1 or rows % unit:
        fail(op, f"unit {unit} must be >= 1 and divide the row count {rows}")
    n = rows // unit
    if not 0 <= k <= n:
        fail(op, f"k must be in [0, {n}] (the number of units), got {k}")
    if p not in (1, 2):
        fail(op, f"p must be 1 or 2, got {p}")


_registry.define("select_by_norm(Tensor matrix, int unit, int k, int p, bool largest) -> (Tensor, Tensor)",
                 check_select_by_norm, select_by_norm_reference)


@torch.library.register_fake("lets_core::select_by_norm")
def _select_by_norm_fake(matrix: Tensor, unit: int, k: int, p: int, largest: bool) -> tuple[Tensor, Tensor]:
    return matrix.new_empty(*matrix.shape[:-2], k * unit, matrix.shape[-1]), matrix.new_empty(k, dtype=torch.long)


def _select_setup(ctx, inputs, output) -> None:
    matrix, unit = inputs[0], inputs[1]
    ctx.unit = unit
    ctx.save_for_backward(output[1])
    ctx.shape = matrix.shape


def _select_backward(ctx, grad_rows: Tensor, grad_idx):
    (idx,) = ctx.saved_tensors
    rows = (idx.unsqueeze(1) * ctx.unit + torch.arange(ctx.unit, device=idx.device)).reshape(-1)
    g = grad_rows.new_zeros(ctx.shape).index_copy(len(ctx.shape) - 2, rows, grad_rows)
    return g, None, None, None, None


torch.library.register_autograd("lets_core::select_by_norm", _select_backward, setup_context=_select_setup)


def select_by_norm(matrix: Tensor, unit: int, k: int, p: int, largest: bool) -> tuple[Tensor, Tensor]:
    """Keep the k units (``unit`` consecutive rows each) of ``matrix`` with the largest or smallest norm.

    ``matrix`` is (N, K), or a stack (M, N, K) whose matrices share their row indices (e.g. F_q,
    F_k, F_v of every block of a group: one head owns the same rows in all of them); a unit's norm
    is the Lp norm (p = 1 or 2) of all its entries in all matrices. Returns the gathered rows
    ((k*unit, K), or (M, k*unit, K)) and the unit indices (k,), in ascending order; ties keep the
    lower index. The op checks the arguments.

    Example:
        >>> import torch, lets_core.ops as ops
        >>> rows, idx = ops.select_by_norm(torch.tensor([[1.0], [3.0], [2.0]]), 1, 2, 2, True)
        >>> idx.tolist(), rows.flatten().tolist()
        ([1, 2], [3.0, 2.0])
    """
    for name, value in (("unit", unit), ("k", k), ("p", p)):
        if isinstance(value, bool):  # the op's int arguments would take True as 1
            raise ValueError(f"select_by_norm: {name} must be an integer, got {value!r}")
    return _registry.lets_core.select_by_norm(matrix, unit, k, p, largest)
