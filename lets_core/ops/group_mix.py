"""The op ``lets_core::group_mix`` (the depth transformation G): schema, reference kernel,
argument checks, fake kernel, autograd formula and the public wrapper :func:`group_mix`.

C++ twins: csrc/ops/group_mix.{h,cpp} (checks, output), csrc/ops/cpu/group_mix_kernel.cpp,
csrc/ops/cuda/group_mix_kernel.cu. Tests: tests/test_ops_group_mix.py.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from . import _registry
from ._checks import check_float, check_mix_args, fail

__all__ = ["group_mix"]  # the public wrappers, which lets_core.ops exports


def group_mix_reference(stack: Tensor, coeff: Tensor) -> Tensor:
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
    # Explicit sizes, not -1: zero blocks must give an empty result, as the compiled kernel does.
    per_group = stack.reshape(groups, s, c, _per_chunk(stack, c))  # (G, s, C, rest)
    coeff = coeff.reshape(groups, r // groups if groups else 0, c, s)  # (G, rows per group, C, s)
    mixed = torch.einsum("gpcs,gscx->gpcx", coeff.to(stack.dtype), per_group)
    return mixed.reshape(r, *stack.shape[1:])


def _per_chunk(stack: Tensor, chunks: int) -> int:
    """Elements of one chunk of one block of ``stack`` (L, N, ...), whose dim 1 holds the chunks."""
    return math.prod(stack.shape[1:]) // chunks


def check_group_mix(stack: Tensor, coeff: Tensor) -> None:
    """The twin of check_group_mix in csrc/ops/group_mix.cpp."""
    op = "group_mix"
    check_float(stack, "stack", op)
    if stack.dim() < 2:
        fail(op, f"stack must be (blocks, size, ...), got shape {tuple(stack.shape)}")
    check_mix_args(op, stack.shape[0], stack.shape[1], coeff, stack)


_registry.define("group_mix(Tensor stack, Tensor coeff) -> Tensor", check_group_mix, group_mix_reference,
                 autocast=True)


@torch.library.register_fake("lets_core::group_mix")
def _group_mix_fake(stack: Tensor, coeff: Tensor) -> Tensor:
    return stack.new_empty(coeff.shape[0], *stack.shape[1:])


# Autograd ------------------------------------------------------------------------------------------

def _group_layout(stack: Tensor, coeff: Tensor) -> tuple[int, int, int, int, int]:
    """(groups G, rows per group P, chunks C, group size s, rows R) of a group_mix call."""
    r, s = coeff.shape[0], coeff.shape[-1]
    groups = stack.shape[0] // s
    c = coeff.shape[1] if coeff.dim() == 3 else 1
    return groups, r // groups if groups else 0, c, s, r


def mix_grads(grad: Tensor, stack: Tensor, coeff: Tensor, need_stack: bool, need_coeff: bool):
    """Gradients of <grad, group_mix(stack, coeff)> in stack and coeff (``stack`` is only read for
    the coefficient gradient). widen_mix's backward (widen_mix.py) reuses it for its mix."""
    groups, per, c, s, r = _group_layout(stack, coeff)
    if groups == 0:  # no blocks, no rows: the transposed mix below would have a group size of 0
        return (torch.zeros_like(stack) if need_stack else None), (torch.zeros_like(coeff) if need_coeff else None)
    g_stack = g_coeff = None
    if need_stack:
        # Block s*g+m receives sum_p coeff[g*P+p, :, m] * grad[g*P+p]: a group_mix of the grads
        # (R rows in groups of P) with the transposed coefficients (L rows, P per group).
        c_t = coeff.reshape(groups, per, c, s).permute(0, 3, 2, 1).reshape(groups * s, c, per)
        if coeff.dim() == 2:
            c_t = c_t.squeeze(1)
        g_stack = torch.ops.lets_core.group_mix(grad, c_t)
    if need_coeff:
        acc = torch.promote_types(coeff.dtype, stack.dtype)
        g = grad.reshape(groups, per, c, _per_chunk(grad, c)).to(acc)
        x = stack.reshape(groups, s, c, _per_chunk(stack, c)).to(acc)
        g_coeff = coefficient_grad(g, x, by_reduction=grad.is_cuda).reshape(coeff.shape).to(coeff.dtype)
    return g_stack, g_coeff


def coefficient_grad(g: Tensor, x: Tensor, by_reduction: bool) -> Tensor:
    """sum over x of g[G, P, C, X] * x[G, s, C, X], as (G, P, C, s).

    As one product this is a GEMM with a tiny output (P x s) and an inner dimension of a whole
    block (millions of elements), which cuBLAS runs on a handful of SMs: 11 ms at the paper's fc1
    shapes on an H100, where reading both tensors takes about 0.1 ms. ``by_reduction`` (used on
    CUDA) computes each of the s columns as an elementwise product and a sum instead, which spread
    over the whole GPU. CPU BLAS splits the long inner dimension over its threads itself, so the
    product stays there."""
    if not by_reduction:
        return torch.einsum("gpcx,gscx->gpcs", g, x)
    return torch.stack([(g * x[:, m].unsqueeze(1)).sum(-1) for m in range(x.shape[1])], dim=-1)


def _group_mix_setup(ctx, inputs, output) -> None:
    ctx.save_for_backward(*inputs)


def _group_mix_backward(ctx, grad: Tensor):
    stack, coeff = ctx.saved_tensors
    return mix_grads(grad, stack, coeff, *ctx.needs_input_grad)


torch.library.register_autograd("lets_core::group_mix", _group_mix_backward, setup_context=_group_mix_setup)


# Public wrapper ---------------------------------------------------------------------------------------

def group_mix(stack: Tensor, coeff: Tensor) -> Tensor:
    """Depth transformation: row r = sum_m coeff[r, m] * stack[s*g(r) + m].

    ``stack`` (L, N, ...) are L blocks in consecutive groups of s = coeff.shape[-1]; ``coeff`` is
    (R, s) or (R, C, s) (one coefficient per chunk of dim 1, for fused q|k|v). The R rows are
    spread evenly and in order over the L/s groups. Returns (R, N, ...). The op checks the
    arguments (ValueError naming the one at fault).

    Example:
        >>> import torch, lets_core.ops as ops
        >>> ops.group_mix(torch.tensor([[1.0], [2.0], [3.0], [4.0]]), torch.tensor([[1.0, 1.0], [0.5, 0.0]]))
        tensor([[3.0000],
                [1.5000]])
    """
    return _registry.lets_core.group_mix(stack, coeff)
