"""Argument checks of the ``lets_core`` ops when they run the reference kernels.

The compiled kernels perform the same checks in C++ (csrc/ops/<op>.cpp, with the helpers of
csrc/common/checks.cpp, ``TORCH_CHECK_VALUE``), so a direct ``torch.ops.lets_core.*`` call fails
with a ValueError naming the op, the argument and what is allowed, whichever kernel runs.
"""

from __future__ import annotations

from torch import Tensor

from . import plans


def _fail(op: str, message: str) -> None:
    raise ValueError(f"lets_core::{op}: {message}")


def _factors(op: str, ref: Tensor, f_out: Tensor | None, f_in: Tensor | None) -> tuple[int, int, int]:
    b = ref.shape[0]
    for name, f, dims in (("f_out", f_out, 4), ("f_in", f_in, 3)):
        if f is None:
            continue
        if f.device != ref.device or f.dtype != ref.dtype:
            _fail(op, f"{name} is {f.dtype} on {f.device} but the first argument is {ref.dtype} on "
                      f"{ref.device}; the factors must match it")
        if f.dim() != dims:
            _fail(op, f"{name} must have {dims} dims, got shape {tuple(f.shape)}")
        if f.shape[0] not in (1, b):
            _fail(op, f"{name} leading dim must be 1 (shared) or the block count {b}, got {f.shape[0]}")
    c, d_o = (1, 0) if f_out is None else (f_out.shape[1], f_out.shape[2])
    if c < 1:
        _fail(op, f"f_out must have at least one chunk, got shape {tuple(f_out.shape)}")
    return c, d_o, 0 if f_in is None else f_in.shape[1]


def _last_dims(op: str, f_out: Tensor | None, f_in: Tensor | None, o_c: int, i: int) -> None:
    if f_out is not None and f_out.shape[3] != o_c:
        _fail(op, f"f_out last dim must be {o_c} (rows per chunk), got shape {tuple(f_out.shape)}")
    if f_in is not None and f_in.shape[2] != i:
        _fail(op, f"f_in last dim must be {i} (narrow columns), got shape {tuple(f_in.shape)}")


def _widen_args(op: str, weight: Tensor, f_out: Tensor | None, f_in: Tensor | None) -> None:
    if weight.dim() != 3:
        _fail(op, f"weight must be (blocks, out, in), got shape {tuple(weight.shape)}")
    c, _, _ = _factors(op, weight, f_out, f_in)
    if weight.shape[1] % c:
        _fail(op, f"f_out has {c} chunks, which do not divide the weight's {weight.shape[1]} rows")
    _last_dims(op, f_out, f_in, weight.shape[1] // c, weight.shape[2])


def widen(weight: Tensor, f_out: Tensor | None, f_in: Tensor | None) -> None:
    _widen_args("widen", weight, f_out, f_in)


def widen_adjoint(grad: Tensor, f_out: Tensor | None, f_in: Tensor | None) -> None:
    if grad.dim() != 3:
        _fail("widen_adjoint", f"grad must be (blocks, wide out, wide in), got shape {tuple(grad.shape)}")
    c, d_o, d_i = _factors("widen_adjoint", grad, f_out, f_in)
    if grad.shape[1] % c or grad.shape[1] // c < d_o:
        _fail("widen_adjoint", f"grad has {grad.shape[1]} rows, which is not {c} chunks of at least {d_o} rows")
    if grad.shape[2] < d_i:
        _fail("widen_adjoint", f"grad has {grad.shape[2]} columns, fewer than f_in's {d_i} new columns")
    _last_dims("widen_adjoint", f_out, f_in, grad.shape[1] // c - d_o, grad.shape[2] - d_i)


def _mix_args(op: str, blocks: int, size: int, coeff: Tensor, ref: Tensor) -> None:
    """coeff against a stack of ``blocks`` blocks whose dim 1 (the chunked one) has ``size`` entries."""
    if coeff.dim() not in (2, 3):
        _fail(op, f"coeff must be (rows, s) or (rows, chunks, s), got shape {tuple(coeff.shape)}")
    if coeff.device != ref.device:
        _fail(op, f"coeff is on {coeff.device} but the blocks are on {ref.device}")
    s, r = coeff.shape[-1], coeff.shape[0]
    if s < 1 or blocks % s:
        _fail(op, f"group size {s} must be >= 1 and divide the block count {blocks}")
    groups = blocks // s
    if (r != 0) if groups == 0 else r % groups:
        _fail(op, f"{r} rows cannot be spread evenly over {groups} groups")
    if coeff.dim() == 3 and (coeff.shape[1] < 1 or size % coeff.shape[1]):
        _fail(op, f"{coeff.shape[1]} coefficient chunks do not divide dim 1 of the blocks ({size})")


def group_mix(stack: Tensor, coeff: Tensor) -> None:
    if stack.dim() < 2:
        _fail("group_mix", f"stack must be (blocks, size, ...), got shape {tuple(stack.shape)}")
    _mix_args("group_mix", stack.shape[0], stack.shape[1], coeff, stack)


def widen_mix(weight: Tensor, f_out: Tensor | None, f_in: Tensor | None, coeff: Tensor, plan: int) -> None:
    _widen_args("widen_mix", weight, f_out, f_in)
    c, d_o = (1, 0) if f_out is None else (f_out.shape[1], f_out.shape[2])
    _mix_args("widen_mix", weight.shape[0], weight.shape[1] + c * d_o, coeff, weight)
    valid = plans.valid_plans(plans.WidenMixShape.of(weight, f_out, f_in, coeff))
    if plan not in valid:
        allowed = ", ".join(f"{int(p)} ({p.name})" for p in valid)
        _fail("widen_mix", f"plan {plan} is not valid for these factors; allowed: {allowed}")


def select_by_norm(matrix: Tensor, unit: int, k: int, p: int, largest: bool) -> None:  # noqa: ARG001
    if matrix.dim() not in (2, 3):
        _fail("select_by_norm", f"matrix must be (rows, cols) or a stack (matrices, rows, cols), "
                                f"got shape {tuple(matrix.shape)}")
    rows = matrix.shape[-2]
    if unit < 1 or rows % unit:
        _fail("select_by_norm", f"unit {unit} must be >= 1 and divide the row count {rows}")
    n = rows // unit
    if not 0 <= k <= n:
        _fail("select_by_norm", f"k must be in [0, {n}] (the number of units), got {k}")
    if p not in (1, 2):
        _fail("select_by_norm", f"p must be 1 or 2, got {p}")
