"""The generation arithmetic of LeTs, as a small set of batched ops.

Everything the Aux-Net and Des-Net builders compute from learngene, F and G goes through these
functions. They check their arguments and call the ``lets_core`` custom ops
(``torch.ops.lets_core.*``, defined in ``_library.py``), which run the compiled CPU/CUDA kernels of
``lets_core._C`` when it is loaded and the pure-PyTorch reference (``reference.py``) otherwise.

- :func:`widen`: E(F_out) W E(F_in)^T and E(F_out) b over a stack of blocks (fused q|k|v via chunks).
- :func:`widen_vector`: E(F) v over a stack of vectors (LayerNorm gamma/beta).
- :func:`group_mix`: the depth transformation, weighted sums of the blocks of each group.
- :func:`widen_mix` / :func:`widen_mix_vector`: both at once, one call per module type, in the
  cheapest association of the product chain (``plans.py``).
- :func:`select_by_norm`: rank row units by L1/L2 norm, keep the top or bottom k, gather them.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .. import _extension
from . import _checks, _library, plans, reference  # noqa: F401  (_library registers the ops)

_extension.load()
_ops = torch.ops.lets_core


def _check_factor(name: str, f: Tensor, batch: int, rows: int, expect_dims: int) -> None:
    if f.dim() != expect_dims:
        raise ValueError(f"{name} must have {expect_dims} dims, got shape {tuple(f.shape)}")
    if f.shape[0] not in (1, batch):
        raise ValueError(f"{name} leading dim must be 1 (shared) or the block count {batch}, got {f.shape[0]}")
    if f.shape[-1] != rows:
        raise ValueError(f"{name} last dim must be {rows} (the size it combines), got shape {tuple(f.shape)}")


def _check_chunks(name: str, f: Tensor, size: int) -> None:
    if size % f.shape[1]:
        raise ValueError(f"{name} has {f.shape[1]} chunks, which do not divide the size {size}")


def widen(weight: Tensor, bias: Tensor | None, f_out: Tensor | None,
          f_in: Tensor | None) -> tuple[Tensor, Tensor | None]:
    """Widen a stack of linear layers: ``E(F_out) W E(F_in)^T`` and ``E(F_out) b``.

    Args:
        weight: (B, O, I) weights of B blocks.
        bias: (B, O) biases, or None.
        f_out: (1 or B, C, dO, O/C) output factors, or None to keep the outputs. With C > 1 the
            output rows are C chunks (q|k|v), each grown by its own factor, which keeps timm's
            fused qkv layout.
        f_in: (1 or B, dI, I) input factor, or None to keep the inputs.

    Returns:
        (B, C*(O/C + dO), I + dI) weight and (B, C*(O/C + dO)) bias (None if ``bias`` is None).

    Example:
        >>> import torch, lets_core.ops as ops
        >>> w, b = ops.widen(torch.eye(2)[None], torch.zeros(1, 2), torch.ones(1, 1, 1, 2), None)
        >>> w.shape, b.shape
        (torch.Size([1, 3, 2]), torch.Size([1, 3]))
    """
    if weight.dim() != 3:
        raise ValueError(f"weight must be (blocks, out, in), got shape {tuple(weight.shape)}")
    b, o, i = weight.shape
    if bias is not None and tuple(bias.shape) != (b, o):
        raise ValueError(f"bias must have shape {(b, o)}, got {tuple(bias.shape)}")
    if f_out is not None:
        _check_chunks("f_out", f_out, o)
        _check_factor("f_out", f_out, b, o // f_out.shape[1], 4)
    if f_in is not None:
        _check_factor("f_in", f_in, b, i, 3)
    wide = _ops.widen(weight, f_out, f_in)
    if bias is not None and f_out is not None:
        bias = widen_vector(bias, f_out)
    return wide, bias


def widen_vector(vec: Tensor, f: Tensor) -> Tensor:
    """Widen a stack of vectors: ``E(F) v`` per chunk; ``vec`` (B, N), ``f`` (1 or B, C, dN, N/C)."""
    if vec.dim() != 2:
        raise ValueError(f"vec must be (blocks, size), got shape {tuple(vec.shape)}")
    _check_chunks("f", f, vec.shape[1])
    _check_factor("f", f, vec.shape[0], vec.shape[1] // f.shape[1], 4)
    return _ops.widen(vec.unsqueeze(-1), f, None).squeeze(-1)


def group_mix(stack: Tensor, coeff: Tensor) -> Tensor:
    """Depth transformation: row r = sum_m coeff[r, m] * stack[s*g(r) + m].

    ``stack`` (L, N, ...) are L blocks in consecutive groups of s = coeff.shape[-1]; ``coeff`` is
    (R, s) or (R, C, s) (one coefficient per chunk of dim 1, for fused q|k|v). The R rows are
    spread evenly and in order over the L/s groups. Returns (R, N, ...).
    """
    if coeff.dim() not in (2, 3):
        raise ValueError(f"coeff must be (rows, s) or (rows, chunks, s), got shape {tuple(coeff.shape)}")
    if stack.dim() < 2:
        raise ValueError(f"stack must be (blocks, size, ...), got shape {tuple(stack.shape)}")
    s, r = coeff.shape[-1], coeff.shape[0]
    if stack.shape[0] % s:
        raise ValueError(f"group size {s} does not divide the block count {stack.shape[0]}")
    if r % (stack.shape[0] // s):
        raise ValueError(f"{r} rows cannot be spread evenly over {stack.shape[0] // s} groups")
    if coeff.dim() == 3 and stack.shape[1] % coeff.shape[1]:
        raise ValueError(f"{coeff.shape[1]} coefficient chunks do not divide dim 1 of stack ({stack.shape[1]})")
    return _ops.group_mix(stack, coeff)


def widen_mix(weight: Tensor, bias: Tensor | None, f_out: Tensor | None, f_in: Tensor | None,
              coeff: Tensor, bias_coeff: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
    """Widen a stack of blocks and mix each group: one distinct Aux layer per coefficient row.

    Row r of the result is ``sum_m coeff[r, m] * E(F_out_j) W_j E(F_in_j)^T`` with
    j = s * group(r) + m, i.e. ``group_mix(widen(...), coeff)``, computed in the cheapest order the
    shapes allow (``plans.choose_plan``: a factor shared by all blocks is applied once per row
    after the mix instead of once per block before it). The bias is widened with F_out and mixed
    with ``bias_coeff``. Shapes as in :func:`widen` and :func:`group_mix`.

    Example:
        >>> import torch, lets_core.ops as ops
        >>> w, f_e = torch.randn(4, 3, 3), torch.rand(1, 2, 3)
        >>> out, _ = ops.widen_mix(w, None, f_e[:, None], f_e, torch.rand(4, 2))
        >>> out.shape  # 4 rows of 2 groups, each widened from 3 to 5
        torch.Size([4, 5, 5])
    """
    _checks.widen_mix(weight, f_out, f_in, coeff, plans.WidenMixPlan.BLOCKS)
    plan = plans.choose_plan(plans.WidenMixShape.of(weight, f_out, f_in, coeff))
    out = _ops.widen_mix(weight, f_out, f_in, coeff, int(plan))[0]
    if bias is None:
        return out, None
    if bias_coeff is None:
        raise ValueError("bias_coeff is required when a bias is given")
    if tuple(bias.shape) != tuple(weight.shape[:2]):
        raise ValueError(f"bias must have shape {tuple(weight.shape[:2])}, got {tuple(bias.shape)}")
    return out, widen_mix_vector(bias, f_out, bias_coeff)


def widen_mix_vector(vec: Tensor, f: Tensor | None, coeff: Tensor) -> Tensor:
    """:func:`widen_vector` then :func:`group_mix`, as one op: ``vec`` (L, N) -> (R, N + C dN)."""
    if vec.dim() != 2:
        raise ValueError(f"vec must be (blocks, size), got shape {tuple(vec.shape)}")
    stack = vec.unsqueeze(-1)
    _checks.widen_mix(stack, f, None, coeff, plans.WidenMixPlan.BLOCKS)
    plan = plans.choose_plan(plans.WidenMixShape.of(stack, f, None, coeff))
    return _ops.widen_mix(stack, f, None, coeff, int(plan))[0].squeeze(-1)


def select_by_norm(matrix: Tensor, unit: int, k: int, p: int, largest: bool) -> tuple[Tensor, Tensor]:
    """Keep the k units (``unit`` consecutive rows each) of ``matrix`` with the largest or smallest norm.

    ``matrix`` is (N, K), or a stack (M, N, K) whose matrices share their row indices (e.g. F_q,
    F_k, F_v of every block of a group: one head owns the same rows in all of them); a unit's norm
    is the Lp norm (p = 1 or 2) of all its entries in all matrices. Returns the gathered rows
    ((k*unit, K), or (M, k*unit, K)) and the unit indices (k,), in ascending order; ties keep the
    lower index.

    Example:
        >>> import torch, lets_core.ops as ops
        >>> rows, idx = ops.select_by_norm(torch.tensor([[1.0], [3.0], [2.0]]), 1, 2, 2, True)
        >>> idx.tolist(), rows.flatten().tolist()
        ([1, 2], [3.0, 2.0])
    """
    return _ops.select_by_norm(matrix, unit, k, p, largest)  # both kernels check with ValueError


__all__ = ["widen", "widen_vector", "group_mix", "widen_mix", "widen_mix_vector", "select_by_norm"]
