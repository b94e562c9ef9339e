"""The ``lets_core`` custom ops: schemas, reference kernels, fake kernels and autograd formulas.

Each schema is defined here and only here. The pure-PyTorch reference (``reference.py``) is
registered at ``CompositeExplicitAutograd``, so every op runs on any device without the compiled
library; the compiled library (``lets_core._C``, loaded by ``lets_core._extension``) adds CPU and
CUDA kernels, which the dispatcher prefers. Autograd is registered once, above both, and its
backward is written with these same ops and ATen ops, so double backward and torch.compile see
through it whichever kernel runs.
"""

from __future__ import annotations

import torch
from torch import Tensor

from . import _checks, plans, reference

NAMESPACE = "lets_core"
OPS = ("widen", "widen_adjoint", "group_mix", "widen_mix", "select_by_norm")

_lib = torch.library.Library(NAMESPACE, "DEF")
_lib.define("widen(Tensor weight, Tensor? f_out, Tensor? f_in) -> Tensor")
_lib.define("widen_adjoint(Tensor grad, Tensor? f_out, Tensor? f_in) -> Tensor")
_lib.define("group_mix(Tensor stack, Tensor coeff) -> Tensor")
_lib.define("widen_mix(Tensor weight, Tensor? f_out, Tensor? f_in, Tensor coeff, int plan) -> (Tensor, Tensor)")
_lib.define("select_by_norm(Tensor matrix, int unit, int k, int p, bool largest) -> (Tensor, Tensor)")



def _checked(check, kernel):
    """The reference kernel behind the same argument checks as the compiled one."""
    def run(*args):
        check(*args)
        return kernel(*args)
    return run


_REFERENCE = {"widen": reference.widen_weight, "widen_adjoint": reference.widen_adjoint,
              "group_mix": reference.group_mix, "widen_mix": reference.widen_mix,
              "select_by_norm": reference.select_by_norm}
for _name in OPS:
    _lib.impl(_name, _checked(getattr(_checks, _name), _REFERENCE[_name]), "CompositeExplicitAutograd")

_ops = torch.ops.lets_core


# Fake kernels: output shapes only, for torch.compile / meta tensors. ---------------------------

def _growth(f_out: Tensor | None, f_in: Tensor | None) -> tuple[int, int, int]:
    """(chunks, new rows per chunk, new columns) of a widening."""
    c, d_o = (1, 0) if f_out is None else (f_out.shape[1], f_out.shape[2])
    d_i = 0 if f_in is None else f_in.shape[1]
    return c, d_o, d_i


@torch.library.register_fake("lets_core::widen")
def _widen_fake(weight: Tensor, f_out: Tensor | None, f_in: Tensor | None) -> Tensor:
    b, o, i = weight.shape
    c, d_o, d_i = _growth(f_out, f_in)
    return weight.new_empty(b, o + c * d_o, i + d_i)


@torch.library.register_fake("lets_core::widen_adjoint")
def _widen_adjoint_fake(grad: Tensor, f_out: Tensor | None, f_in: Tensor | None) -> Tensor:
    b, rows, cols = grad.shape
    c, d_o, d_i = _growth(f_out, f_in)
    return grad.new_empty(b, rows - c * d_o, cols - d_i)


@torch.library.register_fake("lets_core::group_mix")
def _group_mix_fake(stack: Tensor, coeff: Tensor) -> Tensor:
    return stack.new_empty(coeff.shape[0], *stack.shape[1:])


@torch.library.register_fake("lets_core::widen_mix")
def _widen_mix_fake(weight: Tensor, f_out: Tensor | None, f_in: Tensor | None, coeff: Tensor,
                    plan: int) -> tuple[Tensor, Tensor]:
    b, o, i = weight.shape
    c, d_o, d_i = _growth(f_out, f_in)
    rows = weight.new_empty(coeff.shape[0], o + c * d_o, i + d_i)
    partial = {0: (b, o + c * d_o, i + d_i), 1: (b, o + c * d_o, i), 2: (b, o, i + d_i)}.get(plan, (0,))
    return rows, weight.new_empty(partial)


@torch.library.register_fake("lets_core::select_by_norm")
def _select_by_norm_fake(matrix: Tensor, unit: int, k: int, p: int, largest: bool) -> tuple[Tensor, Tensor]:
    return matrix.new_empty(*matrix.shape[:-2], k * unit, matrix.shape[-1]), matrix.new_empty(k, dtype=torch.long)


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
# Hence one helper serves both ops, and the recursion closes for double backward.

def _bilinear_grads(big: Tensor, small: Tensor, f_out: Tensor | None, f_in: Tensor | None,
                    need_small: bool, need_out: bool, need_in: bool):
    """Gradients of <big, E(Fo) small E(Fi)^T> in small, F_out and F_in.

    ``big`` (B, C*(O/C+dO), I+dI) is on the widened side, ``small`` (B, O, I) on the narrow side.
    """
    b, o, i = small.shape
    c, d_o, d_i = _growth(f_out, f_in)
    o_c = o // c
    g_small = g_out = g_in = None
    if need_out and f_out is not None:
        cols = big.shape[-1]  # explicit: with no new rows (d_o = 0) a -1 would be ambiguous
        bottom = big.reshape(b, c, o_c + d_o, cols)[:, :, o_c:].reshape(b, c * d_o, cols)
        r = _adjoint(bottom, None, f_in).reshape(b, c, d_o, i)
        g_out = torch.matmul(r, small.reshape(b, c, o_c, i).transpose(-1, -2))
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
    return grad if f_out is None and f_in is None else _ops.widen_adjoint(grad, f_out, f_in)


def _add_product(acc: Tensor, a: Tensor, f: Tensor) -> Tensor:
    """acc + a @ f for a (B, n, k) and f (1 or B, k, m), as one BLAS call that accumulates (a
    separate add would be another pass over acc); a shared f makes it one large GEMM."""
    if f.shape[0] == 1:
        b, n, m = acc.shape
        return torch.addmm(acc.reshape(b * n, m), a.reshape(b * n, -1), f[0]).view(b, n, m)
    return torch.baddbmm(acc, a, f)


def _widen_setup(ctx, inputs, output) -> None:
    ctx.save_for_backward(*[t if isinstance(t, Tensor) else None for t in inputs])


def _widen_backward(ctx, grad: Tensor):
    weight, f_out, f_in = ctx.saved_tensors
    return _bilinear_grads(grad, weight, f_out, f_in, *ctx.needs_input_grad)


def _widen_adjoint_backward(ctx, grad: Tensor):
    big, f_out, f_in = ctx.saved_tensors
    need_g, need_out, need_in = ctx.needs_input_grad
    g_big = _ops.widen(grad, f_out, f_in) if need_g else None
    _, g_out, g_in = _bilinear_grads(big, grad, f_out, f_in, False, need_out, need_in)
    return g_big, g_out, g_in


torch.library.register_autograd("lets_core::widen", _widen_backward, setup_context=_widen_setup)
torch.library.register_autograd("lets_core::widen_adjoint", _widen_adjoint_backward,
                                setup_context=_widen_setup)


def _group_layout(stack: Tensor, coeff: Tensor) -> tuple[int, int, int, int, int]:
    """(groups G, rows per group P, chunks C, group size s, rows R) of a group_mix call."""
    r, s = coeff.shape[0], coeff.shape[-1]
    groups = stack.shape[0] // s
    c = coeff.shape[1] if coeff.dim() == 3 else 1
    return groups, r // groups, c, s, r


def _group_mix_setup(ctx, inputs, output) -> None:
    ctx.save_for_backward(*inputs)


def _group_mix_backward(ctx, grad: Tensor):
    stack, coeff = ctx.saved_tensors
    return _mix_grads(grad, stack, coeff, *ctx.needs_input_grad)


def _mix_grads(grad: Tensor, stack: Tensor, coeff: Tensor, need_stack: bool, need_coeff: bool):
    """Gradients of <grad, group_mix(stack, coeff)> in stack and coeff (``stack`` is only read for
    the coefficient gradient)."""
    groups, per, c, s, r = _group_layout(stack, coeff)
    g_stack = g_coeff = None
    if need_stack:
        # Block s*g+m receives sum_p coeff[g*P+p, :, m] * grad[g*P+p]: a group_mix of the grads
        # (R rows in groups of P) with the transposed coefficients (L rows, P per group).
        c_t = coeff.reshape(groups, per, c, s).permute(0, 3, 2, 1).reshape(groups * s, c, per)
        if coeff.dim() == 2:
            c_t = c_t.squeeze(1)
        g_stack = _ops.group_mix(grad, c_t)
    if need_coeff:
        acc = torch.promote_types(coeff.dtype, stack.dtype)
        g = grad.reshape(groups, per, c, -1).to(acc)
        x = stack.reshape(groups, s, c, -1).to(acc)
        g_coeff = torch.einsum("gpcx,gscx->gpcs", g, x).reshape(coeff.shape).to(coeff.dtype)
    return g_stack, g_coeff


torch.library.register_autograd("lets_core::group_mix", _group_mix_backward, setup_context=_group_mix_setup)


# widen_mix is a chain of widenings and one group_mix, associated as its plan says (plans.py). The
# backward walks the same chain in reverse with the two helpers above. Both tensors it reads come
# from the forward: the per-block partial product (the op's second output, as native_layer_norm
# returns its statistics) and the mixed intermediate, which the rows already hold in their narrow
# rows and/or columns (E(F)'s leading block is the identity). The partial product is a
# differentiable output, so its gradient (from double backward) joins the chain at its place.

def _narrow_part(out: Tensor, f_out: Tensor | None, f_in: Tensor | None, rows: bool, cols: bool) -> Tensor:
    """The leading (narrow) rows of every chunk and/or the leading columns of a widened stack."""
    c, d_o, d_i = _growth(f_out, f_in)
    r, n_rows, n_cols = out.shape
    if rows and d_o:
        out = out.reshape(r, c, n_rows // c, n_cols)[:, :, : n_rows // c - d_o].reshape(r, -1, n_cols)
    if cols and d_i:
        out = out[:, :, : n_cols - d_i]
    return out


def _widen_mix_setup(ctx, inputs, output) -> None:
    # The partial product rarely receives a gradient; without this, autograd would hand backward
    # a zero tensor of its size (a fill and an add per call, ~20% of a mid-size generation step).
    ctx.set_materialize_grads(False)
    weight, f_out, f_in, coeff, plan = inputs
    ctx.plan = plans.WidenMixPlan(plan)
    rows, partial = output
    blocks = ctx.plan == plans.WidenMixPlan.BLOCKS
    ctx.save_for_backward(weight, f_out, f_in, coeff, None if blocks else rows, partial)


def _add(a: Tensor | None, b: Tensor | None) -> Tensor | None:
    return b if a is None else a if b is None else a + b


def _widen_mix_backward(ctx, grad: Tensor | None, grad_partial: Tensor | None):
    weight, f_out, f_in, coeff, rows, partial = ctx.saved_tensors
    need_w, need_out, need_in, need_c, _ = ctx.needs_input_grad
    plan = ctx.plan
    g_w = g_out = g_in = g_c = None
    if plan == plans.WidenMixPlan.MIX_FIRST:  # rows = widen(mix(W), Fo, Fi); no partial product
        if grad is not None:
            need_mixed = need_w or need_c
            mixed = _narrow_part(rows, f_out, f_in, rows=True, cols=True)
            g_mixed, g_out, g_in = _bilinear_grads(grad, mixed, f_out, f_in, need_mixed, need_out, need_in)
            if need_mixed:
                g_w, g_c = _mix_grads(g_mixed, weight, coeff, need_w, need_c)
        return g_w, g_out, g_in, g_c, None
    # rows = finish(mix(partial)) and partial = start(W), with the factors of each step per plan.
    start_out, start_in, finish_out, finish_in = {
        plans.WidenMixPlan.BLOCKS: (f_out, f_in, None, None),
        plans.WidenMixPlan.OUT_FIRST: (f_out, None, None, f_in),
        plans.WidenMixPlan.IN_FIRST: (None, f_in, f_out, None),
    }[plan]
    need_start = need_w or (need_out and start_out is not None) or (need_in and start_in is not None)
    g_part = None
    if grad is not None:
        g_mixed = grad
        if plan != plans.WidenMixPlan.BLOCKS:
            mixed = _narrow_part(rows, f_out, f_in, rows=finish_out is not None, cols=finish_in is not None)
            g_mixed, g_fo, g_fi = _bilinear_grads(
                grad, mixed, finish_out, finish_in, need_start or need_c,
                need_out and finish_out is not None, need_in and finish_in is not None)
            g_out = g_fo if finish_out is not None else None
            g_in = g_fi if finish_in is not None else None
        if g_mixed is not None:
            g_part, g_c = _mix_grads(g_mixed, partial, coeff, need_start, need_c)
    if need_start:
        g_part = _add(g_part, grad_partial)
    if g_part is not None:
        g_w, g_so, g_si = _bilinear_grads(g_part, weight, start_out, start_in, need_w,
                                          need_out and start_out is not None, need_in and start_in is not None)
        g_out, g_in = _add(g_out, g_so), _add(g_in, g_si)
    return g_w, g_out, g_in, g_c, None


torch.library.register_autograd("lets_core::widen_mix", _widen_mix_backward, setup_context=_widen_mix_setup)


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
