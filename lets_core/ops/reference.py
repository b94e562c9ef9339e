"""Pure-PyTorch reference of every generation op.

These are the definitions: compiled kernels must agree with them to float tolerance. They are
registered as the ``CompositeExplicitAutograd`` kernels of the ``lets_core`` ops (see
``_library.py``), so they run wherever no compiled kernel is loaded. They are written for clarity
and never return a view of an input (custom ops may not alias their inputs).

Shapes (B = stacked learngene blocks, C = output chunks, e.g. 3 for a fused q|k|v):
- a width factor acting on outputs is ``(1 or B, C, dO, O/C)``: chunk c of the output rows grows
  by ``dO`` rows, each a linear combination (one row of F) of that chunk's rows;
- a width factor acting on inputs is ``(1 or B, dI, I)``.
A leading 1 means one factor shared by every block.
"""

from __future__ import annotations

import torch
from torch import Tensor


def widen_vector(vec: Tensor, f: Tensor) -> Tensor:
    """E(F) v per chunk: ``vec`` (B, N), ``f`` (1|B, C, dN, N/C) -> (B, C * (N/C + dN))."""
    b, n = vec.shape
    c = f.shape[1]
    chunks = vec.reshape(b, c, n // c)
    new = torch.matmul(f, chunks.unsqueeze(-1)).squeeze(-1)  # (B, C, dN)
    return torch.cat([chunks, new], dim=2).reshape(b, -1)


def widen_weight(weight: Tensor, f_out: Tensor | None, f_in: Tensor | None) -> Tensor:
    """E(F_out) W E(F_in)^T per block and chunk.

    ``weight`` (B, O, I), ``f_out`` (1|B, C, dO, O/C) or None, ``f_in`` (1|B, dI, I) or None.
    Returns (B, C*(O/C+dO), I+dI): chunk c is [[W_c, W_c F_in^T], [F_c W_c, F_c W_c F_in^T]].
    """
    w = weight
    if f_in is not None:
        w = torch.cat([w, torch.matmul(w, f_in.transpose(-1, -2))], dim=2)
    if f_out is not None:
        b, o, i = w.shape
        c = f_out.shape[1]
        chunks = w.reshape(b, c, o // c, i)
        w = torch.cat([chunks, torch.matmul(f_out, chunks)], dim=2).reshape(b, -1, i)
    return w.clone() if w is weight else w


def widen_adjoint(grad: Tensor, f_out: Tensor | None, f_in: Tensor | None) -> Tensor:
    """The adjoint of :func:`widen_weight` in its first argument: E(F_out)^T G E(F_in) per chunk.

    ``grad`` (B, C*(O/C+dO), I+dI) -> (B, O, I). This is the weight gradient of a widening, and
    its own gradient is a widening again, which is what closes double backward.
    """
    g = grad
    if f_out is not None:
        b, rows, cols = g.shape
        c, d_o = f_out.shape[1], f_out.shape[2]
        chunks = g.reshape(b, c, rows // c, cols)
        o_c = rows // c - d_o
        top, bottom = chunks[:, :, :o_c], chunks[:, :, o_c:]
        g = (top + torch.matmul(f_out.transpose(-1, -2), bottom)).reshape(b, c * o_c, cols)
    if f_in is not None:
        i = f_in.shape[-1]
        g = g[:, :, :i] + torch.matmul(g[:, :, i:], f_in)
    return g.clone() if g is grad else g


def group_mix(stack: Tensor, coeff: Tensor) -> Tensor:
    """Weighted sums of the blocks of each group: the depth transformation G.

    ``stack`` (L, N, ...) holds L blocks in consecutive groups of s; ``coeff`` is (R, s), or
    (R, C, s) with a separate coefficient per chunk of dim 1 of ``stack``. The R rows are split
    evenly over the L/s groups in order, and row r is sum_m coeff[r, m] * stack[s*g(r) + m].
    Returns (R, N, ...).
    """
    chunked = coeff.dim() == 3
    r, s = coeff.shape[0], coeff.shape[-1]
    groups = stack.shape[0] // s
    c = coeff.shape[1] if chunked else 1
    per_group = stack.reshape(groups, s, c, -1)  # (G, s, C, rest)
    coeff = coeff.reshape(groups, r // groups, c, s)  # (G, rows per group, C, s)
    mixed = torch.einsum("gpcs,gscx->gpcx", coeff.to(stack.dtype), per_group)
    return mixed.reshape(r, *stack.shape[1:])


def widen_mix(weight: Tensor, f_out: Tensor | None, f_in: Tensor | None, coeff: Tensor,
              plan: int) -> tuple[Tensor, Tensor]:
    """Widening followed by the depth mix: ``group_mix(widen_weight(W, F_out, F_in), coeff)``.

    ``plan`` (see ``plans.py``) picks the association; every valid plan gives the same rows, and the
    reference follows it so that the fallback does the compiled kernel's work. Returns the rows
    (R, C*(O/C+dO), I+dI) and the per-block partial product that was mixed (what the coefficient
    gradient reads; empty for MIX_FIRST, which mixes the weight itself).
    """
    if plan == 0:  # BLOCKS: widen each block, then mix
        partial = widen_weight(weight, f_out, f_in)
        return group_mix(partial, coeff), partial
    if plan == 1:  # OUT_FIRST: output side per block, mix, input side per row
        partial = widen_weight(weight, f_out, None)
        return widen_weight(group_mix(partial, coeff), None, f_in), partial
    if plan == 2:  # IN_FIRST: input side per block, mix, output side per row
        partial = widen_weight(weight, None, f_in)
        return widen_weight(group_mix(partial, coeff), f_out, None), partial
    return widen_weight(group_mix(weight, coeff), f_out, f_in), weight.new_empty(0)  # MIX_FIRST


def unit_scores(matrix: Tensor, unit: int, p: int) -> Tensor:
    """Per unit of ``unit`` consecutive rows (of every matrix of a (M, N, K) stack, or of one
    (N, K) matrix): sum of |x| (p=1) or of x^2 (p=2), which orders units like their Lp norm.
    Accumulated in float32, or float64 for float64 input."""
    stack = matrix if matrix.dim() == 3 else matrix.unsqueeze(0)
    m, rows, cols = stack.shape
    flat = stack.reshape(m, rows // unit, unit * cols).to(torch.promote_types(matrix.dtype, torch.float32))
    return flat.abs().sum(dim=(0, 2)) if p == 1 else flat.square().sum(dim=(0, 2))


def select_by_norm(matrix: Tensor, unit: int, k: int, p: int, largest: bool) -> tuple[Tensor, Tensor]:
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


def widen(weight: Tensor, bias: Tensor | None, f_out: Tensor | None,
          f_in: Tensor | None) -> tuple[Tensor, Tensor | None]:
    """E(F_out) W E(F_in)^T and E(F_out) b for a stack of linear layers (weight and bias)."""
    w = widen_weight(weight, f_out, f_in)
    if bias is not None and f_out is not None:
        bias = widen_vector(bias, f_out)
    return w, bias
