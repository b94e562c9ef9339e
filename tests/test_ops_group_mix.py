"""lets_core::group_mix against the reference, gradients, errors."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings, strategies as st

import lets_core.ops as ops
from lets_core.ops.group_mix import group_mix_reference
from testing import DEVICES, DTYPES, assert_matches, non_contiguous, random_leaves

group_mix = torch.ops.lets_core.group_mix


def opcheck_samples(device: str) -> dict[str, list[tuple]]:
    """Arguments for torch.library.opcheck (test_ops_registry.py): chunked and plain coefficients."""
    t = random_leaves(device, 3)
    return {"group_mix": [(t(4, 6, 2), t(6, 3, 2)), (t(4, 3), t(2, 2))]}


def bad_arguments() -> dict[str, tuple[str, tuple]]:
    """Case -> (op, arguments it must refuse), for the twin-check test (test_ops_checks.py): every
    check of check_group_mix and of check_mix_args."""
    z, i64 = torch.zeros, torch.int64
    cases = {
        "group_mix stack int64": ("group_mix", (z(4, 4, dtype=i64), z(2, 2))),
        "group_mix stack 1-D": ("group_mix", (z(4), z(2, 2))),
        "group_mix coeff int64": ("group_mix", (z(4, 4), z(2, 2, dtype=i64))),
        "group_mix coeff 1-D": ("group_mix", (z(4, 4), z(2))),
        "group_mix coeff 4-D": ("group_mix", (z(4, 4), z(2, 1, 1, 2))),
        "group_mix zero group size": ("group_mix", (z(4, 4), z(2, 0))),
        "group_mix group size does not divide": ("group_mix", (z(5, 4), z(2, 2))),
        "group_mix rows not spread evenly": ("group_mix", (z(4, 4), z(3, 2))),
        "group_mix rows over no group": ("group_mix", (z(0, 4), z(2, 1))),
        "group_mix zero coefficient chunks": ("group_mix", (z(4, 4), z(2, 0, 2))),
        "group_mix coefficient chunks do not divide": ("group_mix", (z(4, 4), z(2, 3, 2))),
    }
    if torch.cuda.is_available():  # the device check needs a second device
        cases["group_mix coeff device"] = ("group_mix", (z(4, 4, device="cuda"), z(2, 2)))
    return cases


@st.composite
def mix_case(draw):
    groups, s = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    per_group, c = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    n, tail = c * draw(st.integers(1, 3)), draw(st.sampled_from([(), (1,), (3,), (2, 2)]))
    g = torch.Generator().manual_seed(draw(st.integers(0, 2**31 - 1)))
    stack = torch.randn(groups * s, n, *tail, generator=g)
    chunked = draw(st.booleans())
    coeff = torch.rand(groups * per_group, *((c,) if chunked else ()), s, generator=g)
    if draw(st.booleans()):
        coeff = non_contiguous(coeff)
    return stack, coeff


@pytest.mark.parametrize("device", DEVICES)
@settings(max_examples=40, deadline=None)
@given(case=mix_case(), dtype=st.sampled_from([torch.float64, *DTYPES]))
def test_group_mix_matches_reference(device, case, dtype):
    stack, coeff = case
    # Coefficients stay float32 (they are parameters of G) while the stack may be low precision.
    assert_matches(lambda s, c: group_mix(s, c.float()), lambda s, c: group_mix_reference(s, c.float()),
                   [stack.to(device), coeff.to(device)], dtype)


@pytest.mark.parametrize("device", DEVICES)
def test_group_mix_large_rows_cross_tiles_and_chunks(device):
    # Rows longer than the CPU kernel's column tile, with chunk boundaries inside tiles.
    stack = torch.randn(4, 3 * 1500, device=device)
    coeff = torch.rand(4, 3, 2, device=device)
    torch.testing.assert_close(group_mix(stack, coeff), group_mix_reference(stack, coeff))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("chunked", [False, True])
def test_group_mix_gradcheck_and_gradgradcheck(device, chunked):
    g = torch.Generator().manual_seed(2)
    stack = torch.randn(4, 6, 2, generator=g, dtype=torch.float64).to(device).requires_grad_()
    coeff = torch.randn(6, *((3,) if chunked else ()), 2, generator=g, dtype=torch.float64).to(device).requires_grad_()
    assert torch.autograd.gradcheck(group_mix, (stack, coeff))
    assert torch.autograd.gradgradcheck(group_mix, (stack, coeff))


def test_single_block_group_is_a_scaled_copy():
    stack = torch.randn(1, 5)
    torch.testing.assert_close(group_mix(stack, torch.tensor([[2.0], [3.0]])), torch.cat([2 * stack, 3 * stack]))


@pytest.mark.parametrize("stack, coeff, message", [
    (torch.randn(5, 4), torch.rand(2, 2), "group size 2 must be >= 1 and divide the block count 5"),
    (torch.randn(4, 4), torch.rand(3, 2), "3 rows cannot be spread evenly over 2 groups"),
    (torch.randn(4, 4), torch.rand(2, 3, 2), "3 coefficient chunks do not divide"),
    (torch.randn(4), torch.rand(2, 2), "stack must be"),
    # A zero-width group: the public wrapper once divided by it (ZeroDivisionError).
    (torch.randn(4, 4), torch.rand(2, 0), "group size 0 must be >= 1 and divide the block count 4"),
])
def test_bad_arguments_name_the_problem(stack, coeff, message):
    with pytest.raises(ValueError, match=f"lets_core::group_mix: {message}"):
        group_mix(stack, coeff)
    with pytest.raises(ValueError, match=f"lets_core::group_mix: {message}"):
        ops.group_mix(stack, coeff)


@pytest.mark.parametrize("device", DEVICES)
def test_coefficient_gradient_as_product_and_as_reduction_agree(device):
    # group_mix's backward takes the reduction form on CUDA and the product form elsewhere; both
    # are checked here on every device, so CI (CPU only) covers the CUDA branch's arithmetic.
    from lets_core.ops.group_mix import coefficient_grad

    gen = torch.Generator().manual_seed(3)
    g = torch.randn(3, 2, 4, 50, generator=gen, dtype=torch.float64).to(device)
    x = torch.randn(3, 5, 4, 50, generator=gen, dtype=torch.float64).to(device)
    expected = torch.einsum("gpcx,gscx->gpcs", g.cpu(), x.cpu())
    for by_reduction in (False, True):
        got = coefficient_grad(g, x, by_reduction)
        assert got.shape == (3, 2, 4, 5)
        torch.testing.assert_close(got.cpu(), expected, rtol=1e-12, atol=1e-12)


def test_zero_blocks_give_empty_results_and_gradients():
    """The compiled kernels returned empty tensors for zero blocks while the reference (the
    fallback without the extension; CI runs this file both ways) failed in a reshape(-1)."""
    stack, coeff = torch.randn(0, 3, requires_grad=True), torch.rand(0, 2, requires_grad=True)
    out = ops.group_mix(stack, coeff)
    assert out.shape == (0, 3)
    out.sum().backward()
    assert stack.grad.shape == (0, 3) and coeff.grad.shape == (0, 2)
    weight = torch.randn(0, 4, 3, requires_grad=True)
    wide, _ = ops.widen_mix_linear(weight, None, torch.randn(1, 1, 2, 4), torch.randn(1, 2, 3), torch.rand(0, 2))
    assert wide.shape == (0, 6, 5)
    wide.sum().backward()
    assert weight.grad.shape == (0, 4, 3)
    assert ops.widen_linear(torch.randn(0, 4, 3), None, torch.randn(1, 1, 2, 4), torch.randn(1, 2, 3))[0].shape == (0, 6, 5)
    assert ops.widen_vector(torch.randn(0, 4), torch.randn(1, 1, 2, 4)).shape == (0, 6)
