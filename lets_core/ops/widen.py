"""The ops ``lets_core::widen`` and ``lets_core::widen_adjoint``: schema, reference kernel,
argument checks, fake kernel, autograd formula, and the public wrappers :func:`widen_linear` and
:func:`widen_vector`.

C++ twins: csrc/ops/widen.{h,cpp} (checks, the widening for every device),
csrc/ops/cpu/widen_kernel.cpp, csrc/ops/cuda/widen_kernel.cu. Tests: tests/test_ops_widen.py.

Shapes (B = stacked learngene blocks, C = output chunks, e.g. 3 for a fused q|k|v):
- a width factor acting on outputs is ``(1 or B, C, dO, O/C)``: chunk c of the output rows grows
  by ``dO`` rows, each a linear combination (one row of F) of that chunk's rows;
- a width factor acting on inputs is ``(1 or B, dI, I)``.
A leading 1 means one factor shared by every block.
"""

from __future__ import annotations

import torch
from torch import Tensor

from . import _registry
from ._checks import check_factors, check_float, check_last_dims, fail

__all__ = ["widen_linear", "widen_vector"]  # the public wrappers, which lets_core.ops exports

# Reference kernels: the definitions, which the compiled kernels must match to float tolerance.
# They never return a view of an input (custom ops may not alias their inputs). -----------------


def widen_reference(weight: Tensor, f_out: Tensor | None, f_in: Tensor | None) -> Tensor:
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
        # Explicit sizes, not -1: zero blocks must give an empty result, as the compiled kernel does.
        w = torch.cat([chunks, torch.matmul(f_out, chunks)], dim=2).reshape(b, c * (o // c + f_out.shape[2]), i)
    return w.clone() if w is weight else w


def widen_adjoint_reference(grad: Tensor, f_out: Tensor | None, f_in: Tensor | None) -> Tensor:
    """The adjoint of :func:`widen_reference` in its first argument: E(F_out)^T G E(F_in) per chunk.

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


def widen_vector_reference(vec: Tensor, f: Tensor) -> Tensor:
    """E(F) v per chunk: ``vec`` (B, N), ``f`` (1|B, C, dN, N/C) -> (B, C * (N/C + dN))."""
    b, n = vec.shape
    c = f.shape[1]
    chunks = vec.reshape(b, c, n // c)
    new = torch.matmul(f, chunks.unsqueeze(-1)).squeeze(-1)  # (B, C, dN)
    return torch.cat([chunks, new], dim=2).reshape(b, c * (n // c + f.shape[2]))


# Argument checks (twins of check_widen / check_widen_adjoint in csrc/ops/widen.cpp) -------------

def check_widen(weight: Tensor, f_out: Tensor | None, f_in: Tensor | None, op: str = "widen") -> tuple[int, int, int]:
    """The arguments of a widening (also widen_mix's, with ``op="widen_mix"``); returns (C, dO, dI)."""
    check_float(weight, "weight", op)
    if weight.dim() != 3:
        fail(op, f"weight must be (blocks, out, in), got shape {tuple(weight.shape)}")
    c, d_o, d_i = check_factors(op, weight, f_out, f_in)
    if weight.shape[1] % c:
        fail(op, f"f_out has {c} chunks, which do not divide the weight's {weight.shape[1]} rows")
    check_last_dims(op, f_out, f_in, weight.shape[1] // c, weight.shape[2])
    return c, d_o, d_i


def check_widen_adjoint(grad: Tensor, f_out: Tensor | None, f_in: Tensor | None) -> None:
    op = "widen_adjoint"
    check_float(grad, "grad", op)
    if grad.dim() != 3:
        fail(op, f"grad must be (blocks, wide out, wide in), got shape {tuple(grad.shape)}")
    c, d_o, d_i = check_factors(op, grad, f_out, f_in)
    if grad.shape[1] % c or grad.shape[1] // c < d_o:
        fail(op, f"grad has {grad.shape[1]} rows, which is not {c} chunks of at least {d_o} rows")
    if grad.shape[2] < d_i:
        fail(op, f"grad has {grad.shape[2]} columns, fewer than f_in's {d_i} new columns")
    check_last_dims(op, f_out, f_in, grad.shape[1] // c - d_o, grad.shape[2] - d_i)


# Schemas --------------------------------------------------------------------------------------

_registry.define("widen(Tensor weight, Tensor? f_out, Tensor? f_in) -> Tensor", check_widen, widen_reference,
                 autocast=True)
_registry.define("widen_adjoint(Tensor grad, Tensor? f_out, Tensor? f_in) -> Tensor", check_widen_adjoint,
                 widen_adjoint_reference, autocast=True)


# Fake kernels: output shapes only, for torch.compile / meta tensors ----------------------------

def growth(f_out: Tensor | None, f_in: Tensor | None) -> tuple[int, int, int]:
    """(chunks, new rows per chunk, new columns) of a widening."""
    c, d_o = (1, 0) if f_out is None else (f_out.shape[1], f_out.shape[2])
    d_i = 0 if f_in is None else f_in.shape[1]
    return c, d_o, d_i


@torch.library.register_fake("lets_core::widen")
def _widen_fake(weight: Tensor, f_out: Tensor | None, f_in: Tensor | None) -> Tensor:
    b, o, i = weight.shape
    c, d_o, d_i = growth(f_out, f_in)
    return weight.new_empty(b, o + c * d_o, i + d_i)


@torch.library.register_fake("lets_core::widen_adjoint")
def _widen_adjoint_fake(grad: Tensor, f_out: Tensor | None, f_in: Tensor | None) -> Tensor:
    b, rows, cols = grad.shape
    c, d_o, d_i = growth(f_out, f_in)
    return grad.new_empty(b, rows - c * d_o, cols - d_i)


# Autograd ----------------------------------------------------------------------------------------
#
# For one chunk, widen gives [[W, W Fi^T], [Fo W, Fo W Fi^T]]. With an upstream gradient G split the
# same way, and the two partial narrowings R = [G21 G22] E(Fi) (bottom rows narrowed on the right)
# and L = (E(Fo)^T G)[:, I:] = G12 + Fo^T G22 (right columns narrowed on the left):
#   dFo = R W^T,    dFi = L^T W,    dW = E(Fo)^T G E(Fi) = (G11 + Fo^T G21) + L Fi.
# Reusing L for dW costs six products of the block sizes, the same as plain autograd through the
# concatenations (which keeps the forward's [W, W Fi^T] alive instead), and fewer when F_out is
# large (fc1). widen_adjoint(G) = E(Fo)^T G E(Fi) is linear in G with the same structure: its
# gradient in G is widen(H), and its factor gradients are the formulas above with W replaced by H.
# Hence one helper serves both ops, and the recursion closes for double backward. widen_mix's
# backward (widen_mix.py) reuses it for each widening of its chain.

def bilinear_grads(big: Tensor, small: Tensor, f_out: Tensor | None, f_in: Tensor | None,
                   need_small: bool, need_out: bool, need_in: bool):
    """Gradients of <big, E(Fo) small E(Fi)^T> in small, F_out and F_in.

    ``big`` (B, C*(O/C+dO), I+dI) is on the widened side, ``small`` (B, O, I) on the narrow side.
    """
    b, o, i = small.shape
    c, d_o, d_i = growth(f_out, f_in)
    o_c = o // c
    g_small = g_out = g_in = None
    if need_out and f_out is not None:
        cols = big.shape[-1]  # explicit: with no new rows (d_o = 0) a -1 would be ambiguous
        bottom = big.reshape(b, c, o_c + d_o, cols)[:, :, o_c:].reshape(b, c * d_o, cols)
        r = _adjoint(bottom, None, f_in).reshape(b, c, d_o, i)
        small_t = small.reshape(b, c, o_c, i).transpose(-1, -2)
        # A single column (a widened vector) makes this an outer product: a broadcast multiply
        # writes it at memory speed, where a GEMM with an inner dimension of 1 took twice as long.
        g_out = r * small_t if i == 1 else torch.matmul(r, small_t)
        if f_out.shape[0] == 1 and b != 1:
            g_out = g_out.sum(0, keepdim=True)
    left = None
    if f_in is not None and (need_in or need_small):
        left = _adjoint(big[:, :, i:], f_out, None)  # (B, O, dI)
    if need_in and f_in is not None:
        if f_in.shape[0] == 1:  # shared: one GEMM over all blocks' rows instead of a batch and a sum
            g_in = torch.mm(left.reshape(b * o, d_i).t(), small.reshape(b * o, i)).unsqueeze(0)
        else:
            g_in = torch.matmul(left.transpose(-1, -2), small)
    if need_small:
        g_small = _adjoint(big[:, :, :i] if f_in is not None else big, f_out, None)
        if left is not None:
            g_small = _add_product(g_small, left, f_in)
    return g_small, g_out, g_in


def _adjoint(grad: Tensor, f_out: Tensor | None, f_in: Tensor | None) -> Tensor:
    """widen_adjoint, except that with no factor it is the identity: the (strided) view itself is
    returned instead of a copy made by the op."""
    return grad if f_out is None and f_in is None else torch.ops.lets_core.widen_adjoint(grad, f_out, f_in)


def _add_product(acc: Tensor, a: Tensor, f: Tensor) -> Tensor:
    """acc + a @ f for a (B, n, k) and f (1 or B, k, m), as one BLAS call that accumulates (a
    separate add would be another pass over acc); a shared f makes it one large GEMM."""
    if f.shape[0] == 1:
        b, n, m = acc.shape
        return torch.addmm(acc.reshape(b * n, m), a.reshape(b * n, a.shape[-1]), f[0]).view(b, n, m)
    return torch.baddbmm(acc, a, f)


def _widen_setup(ctx, inputs, output) -> None:
    ctx.save_for_backward(*[t if isinstance(t, Tensor) else None for t in inputs])


def _widen_backward(ctx, grad: Tensor):
    weight, f_out, f_in = ctx.saved_tensors
    return bilinear_grads(grad, weight, f_out, f_in, *ctx.needs_input_grad)


def _widen_adjoint_backward(ctx, grad: Tensor):
    big, f_out, f_in = ctx.saved_tensors
    need_g, need_out, need_in = ctx.needs_input_grad
    g_big = torch.ops.lets_core.widen(grad, f_out, f_in) if need_g else None
    _, g_out, g_in = bilinear_grads(big, grad, f_out, f_in, False, need_out, need_in)
    return g_big, g_out, g_in


torch.library.register_autograd("lets_core::widen", _widen_backward, setup_context=_widen_setup)
torch.library.register_autograd("lets_core::widen_adjoint", _widen_adjoint_backward,
                                setup_context=_widen_setup)


# Public wrappers ------------------------------------------------------------------------------------

def widen_linear(weight: Tensor, bias: Tensor | None, f_out: Tensor | None,
                 f_in: Tensor | None) -> tuple[Tensor, Tensor | None]:
    """Widen a stack of linear layers: ``E(F_out) W E(F_in)^T`` and ``E(F_out) b``.

    The weight is the op ``lets_core::widen``, which checks the arguments; the bias is
    :func:`widen_vector`.

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
        >>> w, b = ops.widen_linear(torch.eye(2)[None], torch.zeros(1, 2), torch.ones(1, 1, 1, 2), None)
        >>> w.shape, b.shape
        (torch.Size([1, 3, 2]), torch.Size([1, 3]))
    """
    wide = _registry.lets_core.widen(weight, f_out, f_in)
    if bias is not None:
        check_bias(weight, bias)
    if bias is not None and f_out is not None:
        bias = widen_vector(bias, f_out)
    return wide, bias


def check_bias(weight: Tensor, bias: Tensor) -> None:
    """A linear stack's bias: (B, O) beside the (B, O, I) weight, in its dtype and on its device
    (a bias the op does not widen is returned as given, so nothing else would catch a mismatch)."""
    if tuple(bias.shape) != tuple(weight.shape[:2]):
        raise ValueError(f"bias must have shape {tuple(weight.shape[:2])}, got {tuple(bias.shape)}")
    if bias.dtype != weight.dtype or bias.device != weight.device:
        raise ValueError(f"bias is {bias.dtype} on {bias.device} but the weight is {weight.dtype} on "
                         f"{weight.device}; give both in the same dtype on the same device")


def widen_vector(vec: Tensor, f: Tensor) -> Tensor:
    """Widen a stack of vectors: ``E(F) v`` per chunk; ``vec`` (B, N), ``f`` (1 or B, C, dN, N/C).

    The op ``lets_core::widen`` on ``vec`` as (B, N, 1) weights (it checks ``f`` as ``f_out``).
    """
    if vec.dim() != 2:
        raise ValueError(f"vec must be (blocks, size), got shape {tuple(vec.shape)}")
    return _registry.lets_core.widen(vec.unsqueeze(-1), f, None).squeeze(-1)
