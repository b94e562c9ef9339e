"""lets_core::widen_mix against its definition in every order, gradients, edges, wrappers, cost model, errors."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings, strategies as st

import lets_core
import lets_core.ops as ops
from lets_core.ops import widen_mix_order
from lets_core.ops.group_mix import group_mix_reference
from lets_core.ops.widen import widen_reference
from lets_core.ops.widen_mix import widen_mix_reference
from lets_core.ops.widen_mix_order import WidenMixOrder, WidenMixShape
from testing import DEVICES, LOW_PRECISION, assert_matches, extension_loaded, non_contiguous, random_leaves

widen_mix = torch.ops.lets_core.widen_mix

BLOCKS, OUT_FIRST, IN_FIRST, MIX_FIRST = (WidenMixOrder.BLOCKS, WidenMixOrder.OUT_FIRST,
                                          WidenMixOrder.IN_FIRST, WidenMixOrder.MIX_FIRST)


def opcheck_samples(device: str) -> dict[str, list[tuple]]:
    """Arguments for torch.library.opcheck (test_ops_registry.py), in every order: out-first needs a
    shared f_in, in-first a shared f_out, mix-first both."""
    t = random_leaves(device, 3)
    return {"widen_mix": [(t(4, 4, 3), t(4, 1, 2, 4), t(4, 2, 3), t(4, 2), int(BLOCKS)),
                          (t(4, 6, 3), t(4, 3, 1, 2), t(1, 2, 3), t(6, 3, 2), int(OUT_FIRST)),
                          (t(4, 4, 3), t(1, 1, 2, 4), t(4, 1, 3), t(2, 2), int(IN_FIRST)),
                          (t(2, 4, 1), t(1, 1, 2, 4), None, t(2, 2), int(MIX_FIRST))]}


def bad_arguments() -> dict[str, tuple[str, tuple]]:
    """Case -> (op, arguments it must refuse), for the twin-check test (test_ops_checks.py): the
    widening, the coefficients against the widened rows, then the order (whose message lists the
    valid orders by value and name: the C++ enum against WidenMixOrder)."""
    z, i64 = torch.zeros, torch.int64
    cases = {
        "widen_mix weight int64": ("widen_mix", (z(4, 4, 3, dtype=i64), None, None, z(4, 2), int(BLOCKS))),
        "widen_mix f_out leading dim": ("widen_mix", (z(4, 4, 3), z(3, 1, 1, 4), None, z(4, 2), int(BLOCKS))),
        "widen_mix coeff int64": ("widen_mix", (z(4, 4, 3), None, None, z(4, 2, dtype=i64), int(BLOCKS))),
        "widen_mix zero group size": ("widen_mix", (z(4, 4, 3), None, None, z(4, 0), int(BLOCKS))),
        "widen_mix coefficient chunks vs wide rows": (
            "widen_mix", (z(4, 4, 3), z(1, 1, 1, 4), None, z(4, 3, 2), int(BLOCKS))),
        "widen_mix order out of range": ("widen_mix", (z(4, 4, 3), None, None, z(4, 2), 7)),
        "widen_mix order negative": ("widen_mix", (z(4, 4, 3), None, None, z(4, 2), -1)),
        "widen_mix out-first with per-block f_in": (
            "widen_mix", (z(4, 4, 3), None, z(4, 2, 3), z(4, 2), int(OUT_FIRST))),
        "widen_mix mix-first with split chunks": (
            "widen_mix", (z(4, 4, 3), z(1, 2, 1, 2), z(1, 2, 3), z(4, 3, 2), int(MIX_FIRST))),
    }
    if torch.cuda.is_available():  # the device check needs a second device
        cases["widen_mix coeff device"] = ("widen_mix", (z(4, 4, 3, device="cuda"), None, None, z(4, 2), int(BLOCKS)))
    return cases


def definition(weight, f_out, f_in, coeff):
    """What every order must compute: widen every block, then mix each group."""
    return group_mix_reference(widen_reference(weight, f_out, f_in), coeff)


def expected_partial(order, weight, f_out, f_in):
    """The per-block partial product an order mixes (empty for MIX_FIRST, which mixes the weight)."""
    if order == BLOCKS:
        return widen_reference(weight, f_out, f_in)
    if order == OUT_FIRST:
        return widen_reference(weight, f_out, None)
    if order == IN_FIRST:
        return widen_reference(weight, None, f_in)
    return weight.new_empty(0)


def _cast(tensors, dtype):
    return [None if t is None else t.to(dtype) for t in tensors]


@st.composite
def widen_mix_case(draw):
    """A widen_mix with every optional part: Δ = 0, one block, shared or per-block or absent factors,
    plain or chunked coefficients, strided inputs. Also returns the WidenMixShape it should have."""
    groups, s, per_group = draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    n_blocks, n_rows = groups * s, groups * per_group
    c, oc, i = draw(st.integers(1, 3)), draw(st.integers(1, 4)), draw(st.integers(1, 4))
    d_o, d_i = draw(st.integers(0, 3)), draw(st.integers(0, 3))
    use_out, use_in = draw(st.booleans()), draw(st.booleans())
    shared_out, shared_in = draw(st.booleans()), draw(st.booleans())
    g = torch.Generator().manual_seed(draw(st.integers(0, 2**31 - 1)))
    weight = torch.randn(n_blocks, c * oc, i, generator=g)
    f_out = torch.rand(1 if shared_out else n_blocks, c, d_o, oc, generator=g) if use_out else None
    f_in = torch.rand(1 if shared_in else n_blocks, d_i, i, generator=g) if use_in else None
    # Without f_out the weight's rows are one chunk; coefficient chunks divide the widened rows.
    eff_c, eff_oc, eff_do = (c, oc, d_o) if use_out else (1, c * oc, 0)
    wide_rows = eff_c * (eff_oc + eff_do)
    k = draw(st.sampled_from([None] + [k for k in range(1, wide_rows + 1) if wide_rows % k == 0]))
    coeff = torch.randn(n_rows, *(() if k is None else (k,)), s, generator=g)
    if draw(st.booleans()):
        weight, coeff = non_contiguous(weight), non_contiguous(coeff)
        f_out = None if f_out is None else non_contiguous(f_out)
        f_in = None if f_in is None else non_contiguous(f_in)
    shape = WidenMixShape(L=n_blocks, R=n_rows, s=s, C=eff_c, Oc=eff_oc, I=i, dO=eff_do,
                          dI=d_i if use_in else 0, K=1 if k is None else k,
                          out_shared=not use_out or shared_out or n_blocks == 1,
                          in_shared=not use_in or shared_in or n_blocks == 1)
    return (weight, f_out, f_in, coeff), shape


def _close(actual, expected, dtype):
    tol = 1e-10 if dtype == torch.float64 else 1e-5
    scale = max(1.0, expected.abs().max().item()) if expected.numel() else 1.0
    torch.testing.assert_close(actual, expected, rtol=tol, atol=tol * scale)


# 1. Every valid order computes the definition --------------------------------------------------

@pytest.mark.parametrize("device", DEVICES)
@settings(max_examples=40, deadline=None)
@given(case=widen_mix_case(), low=st.sampled_from(LOW_PRECISION))
def test_every_valid_order_computes_the_definition(device, case, low):
    args, shape = case
    weight, f_out, f_in, coeff = [None if t is None else t.to(device) for t in args]
    assert WidenMixShape.of(weight, f_out, f_in, coeff) == shape
    valid = widen_mix_order.valid_orders(shape)
    assert valid[0] == BLOCKS and len(set(valid)) == len(valid)
    n_rows = shape.C * (shape.Oc + shape.dO)
    n_cols = shape.I + shape.dI
    for order in WidenMixOrder:
        if order not in valid:
            # The kernel that runs (compiled or reference) applies the same validity rule.
            with pytest.raises(ValueError, match=f"order {int(order)} .*allowed"):
                widen_mix(weight, f_out, f_in, coeff, int(order))
            continue
        for dtype in (torch.float64, torch.float32):
            w, fo, fi, c = _cast([weight, f_out, f_in, coeff], dtype)
            rows, partial = widen_mix(w, fo, fi, c, int(order))
            assert rows.shape == (shape.R, n_rows, n_cols) and rows.dtype == dtype
            _close(rows, definition(w, fo, fi, c), dtype)
            part = expected_partial(order, w, fo, fi)
            assert partial.shape == part.shape and partial.dtype == dtype
            _close(partial, part, dtype)
        # Low precision: the coefficients stay float32 (parameters of G), the blocks are cast.
        p = int(order)
        assert_matches(lambda w, fo, fi, c: widen_mix(w, fo, fi, c.float(), p)[0],
                       lambda w, fo, fi, c: widen_mix_reference(w, fo, fi, c.float(), p)[0],
                       [weight, f_out, f_in, coeff], low)
        if order != MIX_FIRST:
            assert_matches(lambda w, fo, fi, c: widen_mix(w, fo, fi, c.float(), p)[1],
                           lambda w, fo, fi, c: expected_partial(p, w, fo, fi),
                           [weight, f_out, f_in, coeff], low)


# 2. Gradients ----------------------------------------------------------------------------------

GRAD_CASES = {
    # name: (order, weight, f_out, f_in, coeff)
    "blocks": (BLOCKS, (4, 4, 3), (4, 2, 1, 2), (4, 2, 3), (6, 2)),
    "blocks_chunked": (BLOCKS, (4, 6, 3), (4, 3, 1, 2), (4, 2, 3), (4, 3, 2)),
    "out_first": (OUT_FIRST, (4, 4, 3), (4, 2, 1, 2), (1, 2, 3), (4, 2)),
    "out_first_qkv": (OUT_FIRST, (4, 6, 3), (4, 3, 1, 2), (1, 2, 3), (4, 3, 2)),
    "out_first_no_f_in": (OUT_FIRST, (2, 4, 3), (2, 2, 1, 2), None, (2, 2)),
    "in_first": (IN_FIRST, (4, 4, 3), (1, 2, 1, 2), (4, 2, 3), (4, 2)),
    "in_first_chunked": (IN_FIRST, (4, 4, 3), (1, 2, 1, 2), (4, 2, 3), (4, 2, 2)),
    "mix_first": (MIX_FIRST, (4, 4, 3), (1, 2, 1, 2), (1, 2, 3), (6, 2)),
    "mix_first_vector": (MIX_FIRST, (4, 4, 1), (1, 1, 2, 4), None, (4, 2)),
}


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", sorted(GRAD_CASES))
def test_widen_mix_gradcheck_and_gradgradcheck(device, name):
    order, *shapes = GRAD_CASES[name]
    g = torch.Generator().manual_seed(4)
    weight, f_out, f_in, coeff = [
        None if sh is None else torch.randn(*sh, generator=g, dtype=torch.float64).to(device).requires_grad_()
        for sh in shapes]
    assert order in widen_mix_order.valid_orders(WidenMixShape.of(weight, f_out, f_in, coeff))

    def fn(w, fo, fi, c):  # both outputs: the partial product is differentiable too
        return widen_mix(w, fo, fi, c, int(order))

    inputs = (weight, f_out, f_in, coeff)
    assert torch.autograd.gradcheck(fn, inputs)
    assert torch.autograd.gradgradcheck(fn, inputs)


@pytest.mark.parametrize("order", [BLOCKS, OUT_FIRST])
def test_gradients_agree_with_autograd_through_the_definition(order):
    # The same scalar loss through the op and through the plain-PyTorch definition.
    g = torch.Generator().manual_seed(5)
    leaves = [torch.randn(*sh, generator=g, dtype=torch.float64).requires_grad_()
              for sh in ((4, 6, 3), (4, 3, 1, 2), (1, 2, 3), (4, 3, 2))]
    upstream = torch.randn(4, 9, 5, generator=g, dtype=torch.float64)
    op_grads = torch.autograd.grad((widen_mix(*leaves, int(order))[0] * upstream).sum(), leaves)
    ref_grads = torch.autograd.grad((definition(*leaves) * upstream).sum(), leaves)
    for a, b in zip(op_grads, ref_grads):
        torch.testing.assert_close(a, b)


# 3. Edge cases -------------------------------------------------------------------------------

@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("shared_out, shared_in", [(True, True), (True, False), (False, True), (False, False)])
def test_zero_delta_is_the_group_mix_of_the_weight(device, shared_out, shared_in):
    g = torch.Generator().manual_seed(6)
    weight = torch.randn(4, 6, 3, generator=g, dtype=torch.float64).to(device)
    f_out = torch.zeros(1 if shared_out else 4, 3, 0, 2, dtype=torch.float64, device=device)
    f_in = torch.zeros(1 if shared_in else 4, 0, 3, dtype=torch.float64, device=device)
    for coeff in (torch.randn(6, 2, generator=g, dtype=torch.float64),
                  torch.randn(6, 3, 2, generator=g, dtype=torch.float64)):
        coeff = coeff.to(device)
        expected = group_mix_reference(weight, coeff)
        for factors in ((f_out, f_in), (None, None)):
            for order in widen_mix_order.valid_orders(WidenMixShape.of(weight, *factors, coeff)):
                rows, _ = widen_mix(weight, *factors, coeff, int(order))
                torch.testing.assert_close(rows, expected)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("chunked", [False, True])
def test_single_block_rows_are_scaled_widenings(device, chunked):
    g = torch.Generator().manual_seed(7)
    weight = torch.randn(1, 4, 3, generator=g, dtype=torch.float64).to(device)
    f_out = torch.rand(1, 2, 1, 2, generator=g, dtype=torch.float64).to(device)
    f_in = torch.rand(1, 2, 3, generator=g, dtype=torch.float64).to(device)
    coeff = torch.randn(3, *((2,) if chunked else ()), 1, generator=g, dtype=torch.float64).to(device)
    shape = WidenMixShape.of(weight, f_out, f_in, coeff)
    assert widen_mix_order.valid_orders(shape) == list(WidenMixOrder)  # one block: every factor is shared
    wide = widen_reference(weight, f_out, f_in)[0]  # (6, 5): two chunks of 3 rows
    scale = coeff[..., 0] if chunked else coeff[:, :1].expand(3, 2)  # (R, chunks)
    expected = wide.reshape(1, 2, 3, 5) * scale.reshape(3, 2, 1, 1)
    for order in WidenMixOrder:
        rows, _ = widen_mix(weight, f_out, f_in, coeff, int(order))
        torch.testing.assert_close(rows, expected.reshape(3, 6, 5))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("pick", [0, 1])
@pytest.mark.parametrize("factors", ["none", "shared", "per_block"])
def test_zero_delta_one_hot_coeff_copies_the_picked_block(device, pick, factors):
    # Spec invariant 3: with Δ = 0 and one-hot G, each row is exactly the learngene block it picks.
    g = torch.Generator().manual_seed(8)
    weight = torch.randn(4, 6, 3, generator=g).to(device)
    lead = {"none": None, "shared": 1, "per_block": 4}[factors]
    f_out = None if lead is None else torch.zeros(lead, 3, 0, 2, device=device)
    f_in = None if lead is None else torch.zeros(lead, 0, 3, device=device)
    coeff = torch.zeros(6, 2, device=device)  # 2 groups of s = 2, 3 rows per group
    coeff[:, pick] = 1.0
    valid = widen_mix_order.valid_orders(WidenMixShape.of(weight, f_out, f_in, coeff))
    assert (MIX_FIRST in valid) == (factors != "per_block")
    for order in valid:
        rows, _ = widen_mix(weight, f_out, f_in, coeff, int(order))
        for r in range(6):
            assert torch.equal(rows[r], weight[2 * (r // 3) + pick]), (order, r)


# 4. Public wrappers ------------------------------------------------------------------------------

WRAPPER_CASES = {
    # name: (weight, f_out, f_in, coeff, bias_coeff); bias is (L, O)
    "qkv_chunked": ((4, 6, 3), (4, 3, 1, 2), (1, 2, 3), (4, 3, 2), (4, 3, 2)),
    "qkv_untied_rows": ((4, 6, 3), (4, 3, 1, 2), (1, 2, 3), (8, 3, 2), (8, 3, 2)),
    "proj": ((4, 4, 3), (1, 1, 2, 4), (4, 2, 3), (4, 2), (4, 2)),
    "both_shared": ((4, 4, 3), (1, 2, 1, 2), (1, 2, 3), (6, 2), (6, 2)),
    "per_block_both": ((4, 4, 3), (4, 2, 1, 2), (4, 2, 3), (4, 2), (4, 2)),
    "no_factors": ((4, 4, 3), None, None, (2, 4), (2, 4)),
}


@pytest.mark.parametrize("name", sorted(WRAPPER_CASES))
def test_public_widen_mix_linear_is_group_mix_of_widen_linear(name):
    g = torch.Generator().manual_seed(9)
    w_shape, fo_shape, fi_shape, c_shape, bc_shape = WRAPPER_CASES[name]
    t = lambda *sh: torch.randn(*sh, generator=g, dtype=torch.float64)  # noqa: E731
    weight, bias = t(*w_shape), t(*w_shape[:2])
    f_out = None if fo_shape is None else t(*fo_shape)
    f_in = None if fi_shape is None else t(*fi_shape)
    coeff, bias_coeff = t(*c_shape), t(*bc_shape)
    out, out_b = ops.widen_mix_linear(weight, bias, f_out, f_in, coeff, bias_coeff)
    wide, wide_b = ops.widen_linear(weight, bias, f_out, f_in)
    torch.testing.assert_close(out, ops.group_mix(wide, coeff))
    torch.testing.assert_close(out_b, ops.group_mix(wide_b, bias_coeff))
    no_bias, none = ops.widen_mix_linear(weight, None, f_out, f_in, coeff)
    assert none is None
    torch.testing.assert_close(no_bias, out)


def test_public_widen_mix_vector_is_group_mix_of_widen_vector():
    g = torch.Generator().manual_seed(10)
    t = lambda *sh: torch.randn(*sh, generator=g, dtype=torch.float64)  # noqa: E731
    vec = t(4, 6)
    for f, coeff in ((t(1, 3, 1, 2), t(4, 3, 2)), (t(4, 3, 2, 2), t(4, 2)), (t(1, 1, 3, 6), t(8, 2)),
                     (t(1, 2, 0, 3), t(2, 2))):
        torch.testing.assert_close(ops.widen_mix_vector(vec, f, coeff),
                                   ops.group_mix(ops.widen_vector(vec, f), coeff))
    coeff = t(2, 4)
    torch.testing.assert_close(ops.widen_mix_vector(vec, None, coeff), ops.group_mix(vec, coeff))


def test_public_widen_mix_linear_errors():
    weight, bias, coeff = torch.randn(4, 4, 3), torch.randn(4, 4), torch.rand(4, 2)
    with pytest.raises(ValueError, match="bias_coeff is required"):
        ops.widen_mix_linear(weight, bias, None, None, coeff)
    with pytest.raises(ValueError, match="bias must have shape"):
        ops.widen_mix_linear(weight, torch.randn(4, 5), None, None, coeff, coeff)
    # Row r of the weights and of the biases are one layer: 2 weight rows with 4 biases used to pass.
    for bad in (torch.rand(2, 2), torch.rand(4, 1), torch.rand(4, 1, 2)):
        with pytest.raises(ValueError, match=r"bias_coeff must have coeff's shape \(4, 2\)"):
            ops.widen_mix_linear(weight, bias, None, None, coeff, bad)
    # The op checks the rest, also where the arguments have no shape to choose an order from.
    for bad_weight, bad_f_out, bad_coeff, message in (
            (weight, None, torch.rand(4, 3), "group size 3 must be >= 1"),
            (weight, None, torch.rand(4, 0), "group size 0 must be >= 1"),
            (weight, None, torch.tensor(1.0), r"coeff must be \(rows, s\)"),
            (weight[0], None, coeff, r"weight must be \(blocks, out, in\)"),
            (weight, torch.rand(1, 0, 1, 4), coeff, "f_out must have at least one chunk"),
            (weight.long(), None, coeff, "weight must be float64, float32, bfloat16 or float16, got torch.int64")):
        with pytest.raises(ValueError, match=f"lets_core::widen_mix: {message}"):
            ops.widen_mix_linear(bad_weight, None, bad_f_out, None, bad_coeff)
    with pytest.raises(ValueError, match="lets_core::widen_mix: group size 0 must be >= 1"):
        ops.widen_mix_vector(torch.randn(4, 3), None, torch.rand(4, 0))
    with pytest.raises(ValueError, match="vec must be"):
        ops.widen_mix_vector(torch.randn(4), None, coeff)


# 5. Cost model ---------------------------------------------------------------------------------

PREFERENCE = [MIX_FIRST, OUT_FIRST, IN_FIRST, BLOCKS]


@st.composite
def any_shape(draw):
    groups, s, per_group = draw(st.integers(1, 4)), draw(st.integers(1, 4)), draw(st.integers(1, 4))
    c, oc, i = draw(st.integers(1, 4)), draw(st.integers(1, 64)), draw(st.integers(1, 64))
    d_o, d_i = draw(st.integers(0, 64)), draw(st.integers(0, 64))
    wide_rows = c * (oc + d_o)
    k = draw(st.sampled_from([k for k in range(1, min(wide_rows, 16) + 1) if wide_rows % k == 0]))
    return WidenMixShape(L=groups * s, R=groups * per_group, s=s, C=c, Oc=oc, I=i, dO=d_o, dI=d_i, K=k,
                         out_shared=draw(st.booleans()), in_shared=draw(st.booleans()))


@settings(max_examples=200, deadline=None)
@given(sh=any_shape())
def test_choose_order_is_a_cheapest_valid_order(sh):
    valid = widen_mix_order.valid_orders(sh)
    assert BLOCKS in valid
    assert (OUT_FIRST in valid) == sh.in_shared
    if MIX_FIRST in valid:  # mix-first needs what out-first and in-first need
        assert OUT_FIRST in valid and IN_FIRST in valid
    chosen = widen_mix_order.choose_order(sh)
    assert chosen in valid
    costs = {o: widen_mix_order.order_cost(o, sh) for o in valid}
    assert all(c >= 0 for c in costs.values())
    assert costs[chosen] == min(costs.values())
    # Among equally cheap orders, the one that keeps fewer intermediates alive.
    ties = [o for o in valid if costs[o] == costs[chosen]]
    assert chosen == min(ties, key=PREFERENCE.index)


def _meta(*shape):
    return torch.empty(*shape, device="meta")


D = 384  # paper: Aux width d = 384 from learngene width 384, Δ = 384; 8 blocks, s = 2


def test_paper_qkv_picks_out_first_and_blocks_without_row_tying():
    qkv = WidenMixShape(L=8, R=8, s=2, C=3, Oc=D, I=D, dO=D, dI=D, K=3, out_shared=False, in_shared=True)
    assert WidenMixShape.of(_meta(8, 3 * D, D), _meta(8, 3, D, D), _meta(1, D, D), _meta(8, 3, 2)) == qkv
    assert widen_mix_order.valid_orders(qkv) == [BLOCKS, OUT_FIRST]
    # In units of d^3 (d = 384): BLOCKS widens 8 blocks (8 * 3 chunks * 3 products = 72) and mixes
    # R*s*(6d)*(2d) = 192 d^2 = 0.5; OUT_FIRST widens 8 blocks on the output side (24), mixes
    # R*s*(6d)*d = 0.25 and widens the 8 rows on the input side (8 * 6 = 48): 72.25 < 72.5.
    assert widen_mix_order.order_cost(BLOCKS, qkv) * 2 == 145 * D**3
    assert widen_mix_order.order_cost(OUT_FIRST, qkv) * 4 == 289 * D**3
    assert widen_mix_order.choose_order(qkv) == OUT_FIRST
    # Twice as many rows as blocks: BLOCKS = 72 + 1 = 73 but OUT_FIRST = 24 + 0.5 + 96 = 120.5.
    untied = WidenMixShape(L=8, R=16, s=2, C=3, Oc=D, I=D, dO=D, dI=D, K=3, out_shared=False, in_shared=True)
    assert widen_mix_order.order_cost(BLOCKS, untied) == 73 * D**3
    assert widen_mix_order.order_cost(OUT_FIRST, untied) * 2 == 241 * D**3
    assert widen_mix_order.choose_order(untied) == BLOCKS


def test_paper_proj_picks_in_first_and_layernorm_mix_first():
    proj = WidenMixShape.of(_meta(8, D, D), _meta(1, 1, D, D), _meta(8, D, D), _meta(8, 2))
    assert proj == WidenMixShape(L=8, R=8, s=2, C=1, Oc=D, I=D, dO=D, dI=D, K=1, out_shared=True, in_shared=False)
    assert widen_mix_order.valid_orders(proj) == [BLOCKS, IN_FIRST]
    # BLOCKS = 24 d^3 + a mix of R*s*(2d)^2; IN_FIRST = 8 d^3 + R*s*d*2d + 8 * d*d*2d = 24 d^3 + half that mix.
    assert widen_mix_order.order_cost(IN_FIRST, proj) < widen_mix_order.order_cost(BLOCKS, proj)
    assert widen_mix_order.choose_order(proj) == IN_FIRST
    norm = WidenMixShape.of(_meta(8, D, 1), _meta(1, 1, D, D), None, _meta(8, 2))
    assert widen_mix_order.valid_orders(norm) == list(WidenMixOrder)
    # MIX_FIRST mixes 8 narrow vectors and widens 8: the cheapest (tied with IN_FIRST, preferred).
    assert widen_mix_order.order_cost(MIX_FIRST, norm) == min(widen_mix_order.order_cost(p, norm) for p in WidenMixOrder)
    assert widen_mix_order.choose_order(norm) == MIX_FIRST


# 6. Errors -------------------------------------------------------------------------------------

@pytest.mark.parametrize("f_out, f_in, coeff, order, message", [
    (None, torch.rand(4, 2, 3), torch.rand(4, 2), 1, r"order 1 .*allowed: 0( \(BLOCKS\))?, 2\b"),
    (torch.rand(4, 2, 1, 2), torch.rand(1, 2, 3), torch.rand(4, 2), 2, r"order 2 .*allowed: 0( \(BLOCKS\))?, 1\b"),
    (torch.rand(1, 2, 1, 2), torch.rand(1, 2, 3), torch.rand(4, 3, 2), 3, r"order 3 .*allowed"),
    (None, None, torch.rand(4, 2), 7, r"order 7 .*allowed"),
    (None, None, torch.rand(4, 2), -1, r"order -1 .*allowed"),
])
def test_invalid_order_names_the_allowed_ones(f_out, f_in, coeff, order, message):
    with pytest.raises(ValueError, match=f"lets_core::widen_mix: {message}"):
        widen_mix(torch.randn(4, 4, 3), f_out, f_in, coeff, order)


@pytest.mark.parametrize("coeff, message", [
    (torch.rand(4, 3), "group size 3 must be >= 1 and divide the block count 4"),
    (torch.rand(3, 2), "3 rows cannot be spread evenly over 2 groups"),
    (torch.rand(4, 5, 2), "5 coefficient chunks do not divide"),
])
def test_bad_coefficients_name_the_problem(coeff, message):
    with pytest.raises(ValueError, match=f"lets_core::widen_mix: {message}"):
        widen_mix(torch.randn(4, 4, 3), None, None, coeff, 0)


# 7. Compiled kernel registration ------------------------------------------------------------------

@pytest.mark.skipif(not extension_loaded(), reason="needs the compiled library (this run uses the fallback)")
def test_compiled_library_has_a_cpu_widen_mix_kernel():
    assert "widen_mix" in lets_core._C.build_info()["kernels"]["CPU"]
    assert lets_core.extension_info()["ops"]["widen_mix"]["CPU"] == "compiled"
