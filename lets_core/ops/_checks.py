"""Argument-check helpers of the lets_core ops' reference kernels: the twin of
csrc/common/checks.{h,cpp} (the same checks, in the same order, with the same messages).

Each op's own checks are in its file (``check_widen`` in ``widen.py``, ...), the twins of
``check_<op>`` in csrc/ops/<op>.cpp. A direct ``torch.ops.lets_core.*`` call therefore fails with
the same ValueError, naming the op, the argument and what is allowed, whichever kernel runs
(tests/test_ops_checks.py compares the two paths message by message).
"""

from __future__ import annotations

from typing import NoReturn

import torch
from torch import Tensor

# The dtypes the compiled kernels dispatch on (check_float in checks.cpp).
FLOAT_DTYPES = (torch.float64, torch.float32, torch.bfloat16, torch.float16)


def fail(op: str, message: str) -> NoReturn:
    """ValueError ``lets_core::<op>: <message>`` (LETS_CORE_CHECK in checks.h)."""
    raise ValueError(f"lets_core::{op}: {message}")


def check_float(t: Tensor, name: str, op: str) -> None:
    """``name`` must have a dtype the compiled kernels take."""
    if t.dtype not in FLOAT_DTYPES:
        fail(op, f"{name} must be float64, float32, bfloat16 or float16, got {t.dtype}")


def check_factors(op: str, ref: Tensor, f_out: Tensor | None, f_in: Tensor | None) -> tuple[int, int, int]:
    """f_out (1|B, C, dO, Oc) and f_in (1|B, dI, I) against the first argument ``ref`` of
    B = ref.shape[0] blocks (device and dtype, dims, leading dim), then at least one chunk.
    Returns (C, dO, dI)."""
    b = ref.shape[0]
    for name, f, dims in (("f_out", f_out, 4), ("f_in", f_in, 3)):
        if f is None:
            continue
        if f.device != ref.device or f.dtype != ref.dtype:
            fail(op, f"{name} is {f.dtype} on {f.device} but the first argument is {ref.dtype} on "
                     f"{ref.device}; the factors must match it")
        if f.dim() != dims:
            fail(op, f"{name} must have {dims} dims, got shape {tuple(f.shape)}")
        if f.shape[0] not in (1, b):
            fail(op, f"{name} leading dim must be 1 (shared) or the block count {b}, got {f.shape[0]}")
    c, d_o = (1, 0) if f_out is None else (f_out.shape[1], f_out.shape[2])
    if c < 1:
        fail(op, f"f_out must have at least one chunk, got shape {tuple(f_out.shape)}")
    return c, d_o, 0 if f_in is None else f_in.shape[1]


def check_last_dims(op: str, f_out: Tensor | None, f_in: Tensor | None, rows_per_chunk: int, cols: int) -> None:
    """The factors' last dims against the narrow rows per chunk and the narrow columns."""
    if f_out is not None and f_out.shape[3] != rows_per_chunk:
        fail(op, f"f_out last dim must be {rows_per_chunk} (rows per chunk), got shape {tuple(f_out.shape)}")
    if f_in is not None and f_in.shape[2] != cols:
        fail(op, f"f_in last dim must be {cols} (narrow columns), got shape {tuple(f_in.shape)}")


def check_mix_args(op: str, blocks: int, size: int, coeff: Tensor, ref: Tensor) -> None:
    """coeff (rows, s) or (rows, chunks, s) against ``blocks`` stacked blocks whose dim 1 (the
    chunked one) has ``size`` entries, on the device of ``ref``."""
    check_float(coeff, "coeff", op)
    if coeff.dim() not in (2, 3):
        fail(op, f"coeff must be (rows, s) or (rows, chunks, s), got shape {tuple(coeff.shape)}")
    if coeff.device != ref.device:
        fail(op, f"coeff is on {coeff.device} but the blocks are on {ref.device}")
    s, r = coeff.shape[-1], coeff.shape[0]
    if s < 1 or blocks % s:
        fail(op, f"group size {s} must be >= 1 and divide the block count {blocks}")
    groups = blocks // s
    if (r != 0) if groups == 0 else r % groups:
        fail(op, f"{r} rows cannot be spread evenly over {groups} groups")
    if coeff.dim() == 3 and (coeff.shape[1] < 1 or size % coeff.shape[1]):
        fail(op, f"{coeff.shape[1]} coefficient chunks do not divide dim 1 of the blocks ({size})")
