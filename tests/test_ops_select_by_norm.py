"""lets_core::select_by_norm against the reference, ties, gradients, errors."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings, strategies as st

import lets_core.ops as ops
from lets_core.ops.select_by_norm import select_by_norm_reference
from testing import DEVICES, DTYPES, non_contiguous, random_leaves

select = torch.ops.lets_core.select_by_norm


def opcheck_samples(device: str) -> dict[str, list[tuple]]:
    """Arguments for torch.library.opcheck (test_ops_registry.py): one matrix and a stack, p = 1 and 2."""
    t = random_leaves(device, 3)
    return {"select_by_norm": [(t(8, 3), 2, 2, 2, True), (t(8, 3), 1, 3, 1, False), (t(3, 8, 2), 2, 2, 2, True)]}


def bad_arguments() -> dict[str, tuple[str, tuple]]:
    """Case -> (op, arguments it must refuse), for the twin-check test (test_ops_checks.py): every
    check of check_select_by_norm."""
    z = torch.zeros
    return {
        "select_by_norm matrix int64": ("select_by_norm", (z(6, 2, dtype=torch.int64), 2, 1, 2, True)),
        "select_by_norm matrix 1-D": ("select_by_norm", (z(6), 1, 1, 2, True)),
        "select_by_norm matrix 4-D": ("select_by_norm", (z(1, 2, 6, 2), 1, 1, 2, True)),
        "select_by_norm unit 0": ("select_by_norm", (z(6, 2), 0, 1, 2, True)),
        "select_by_norm unit does not divide": ("select_by_norm", (z(6, 2), 4, 1, 2, True)),
        "select_by_norm k negative": ("select_by_norm", (z(6, 2), 2, -1, 2, True)),
        "select_by_norm k too large": ("select_by_norm", (z(3, 6, 2), 2, 4, 2, False)),
        "select_by_norm p": ("select_by_norm", (z(6, 2), 2, 1, 3, True)),
    }


@pytest.mark.parametrize("device", DEVICES)
@settings(max_examples=60, deadline=None)
@given(units=st.integers(0, 9), unit=st.integers(1, 4), cols=st.integers(1, 5), data=st.data(),
       p=st.sampled_from([1, 2]), largest=st.booleans(), strided=st.booleans(),
       dtype=st.sampled_from([torch.float64, *DTYPES]), seed=st.integers(0, 2**31 - 1))
def test_select_matches_reference(device, units, unit, cols, data, p, largest, strided, dtype, seed):
    k = data.draw(st.integers(0, units))
    g = torch.Generator().manual_seed(seed)
    # Distinct unit norms (well apart) so that rounding cannot reorder near-ties at low precision.
    scale = torch.randperm(max(units, 1), generator=g)[:units].to(torch.float64) + 1
    matrix = (torch.rand(units, unit, cols, generator=g, dtype=torch.float64) * 0.1 + 1) * scale[:, None, None]
    matrix = (matrix * torch.sign(torch.randn(matrix.shape, generator=g))).reshape(units * unit, cols)
    matrix = matrix.to(dtype=dtype, device=device)
    if strided:
        matrix = non_contiguous(matrix)
    values, idx = select(matrix, unit, k, p, largest)
    ref_values, ref_idx = select_by_norm_reference(matrix, unit, k, p, largest)
    assert torch.equal(idx, ref_idx)
    assert torch.equal(values, ref_values)  # a gather: bit-exact
    assert idx.dtype == torch.long and bool((idx[1:] > idx[:-1]).all())


@pytest.mark.parametrize("device", DEVICES)
@settings(max_examples=40, deadline=None)
@given(mats=st.integers(1, 4), units=st.integers(0, 7), unit=st.integers(1, 3), cols=st.integers(1, 4),
       data=st.data(), p=st.sampled_from([1, 2]), largest=st.booleans(), strided=st.booleans(),
       seed=st.integers(0, 2**31 - 1))
def test_stacked_select_ranks_units_over_all_matrices(device, mats, units, unit, cols, data, p, largest, strided,
                                                      seed):
    """A (M, N, K) stack ranks each unit by its rows in all M matrices: the same ranking as one
    matrix that lays those rows side by side, and the same rows gathered from every matrix."""
    k = data.draw(st.integers(0, units))
    g = torch.Generator().manual_seed(seed)
    scale = torch.randperm(max(units, 1), generator=g)[:units].to(torch.float64) + 1  # distinct norms
    stack = torch.randn(mats, units, unit, cols, generator=g, dtype=torch.float64) * scale[None, :, None, None]
    stack = stack.reshape(mats, units * unit, cols).to(device)
    if strided:
        stack = non_contiguous(stack)
    values, idx = select(stack, unit, k, p, largest)
    side_by_side = stack.permute(1, 0, 2).reshape(units * unit, mats * cols)
    _, flat_idx = select_by_norm_reference(side_by_side, unit, k, p, largest)
    assert torch.equal(idx, flat_idx)
    rows = (idx[:, None] * unit + torch.arange(unit, device=idx.device)).reshape(-1)
    assert torch.equal(values, stack[:, rows])
    ref_values, ref_idx = select_by_norm_reference(stack, unit, k, p, largest)
    assert torch.equal(idx, ref_idx) and torch.equal(values, ref_values)


@pytest.mark.parametrize("device", DEVICES)
def test_stacked_select_gradcheck(device):
    m = torch.randn(3, 8, 2, dtype=torch.float64, device=device, requires_grad=True)
    fn = lambda x: select(x, 2, 2, 2, False)[0]  # noqa: E731
    assert torch.autograd.gradcheck(fn, (m,))
    assert torch.autograd.gradgradcheck(fn, (m,))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("largest", [False, True])
def test_ties_keep_the_lower_index(device, largest):
    matrix = torch.tensor([[1.0], [2.0], [1.0], [2.0], [1.0]], device=device)
    values, idx = select(matrix, 1, 2, 2, largest)
    assert idx.tolist() == ([1, 3] if largest else [0, 2])


@pytest.mark.parametrize("device", DEVICES)
def test_select_gradcheck_and_gradgradcheck(device):
    m = torch.randn(8, 3, dtype=torch.float64, device=device, requires_grad=True)
    fn = lambda x: select(x, 2, 2, 1, True)[0]  # noqa: E731
    assert torch.autograd.gradcheck(fn, (m,))
    assert torch.autograd.gradgradcheck(fn, (m,))


def test_public_wrapper_matches():
    m = torch.randn(12, 4)
    for largest in (True, False):
        v, i = ops.select_by_norm(m, 3, 2, 2, largest)
        rv, ri = select_by_norm_reference(m, 3, 2, 2, largest)
        assert torch.equal(i, ri) and torch.equal(v, rv)


@pytest.mark.parametrize("args, message", [
    ((torch.randn(6, 2), 4, 1, 2), "unit 4 must be >= 1 and divide the row count 6"),
    ((torch.randn(6, 2), 2, 4, 2), r"k must be in \[0, 3\]"),
    ((torch.randn(6, 2), 2, 1, 3), "p must be 1 or 2, got 3"),
    ((torch.randn(6), 1, 1, 2), r"matrix must be \(rows, cols\) or"),
    ((torch.randn(1, 2, 6, 2), 1, 1, 2), r"matrix must be \(rows, cols\) or"),
])
def test_bad_arguments_name_the_problem(args, message):
    with pytest.raises(ValueError, match=f"lets_core::select_by_norm: {message}"):
        select(*args, True)
    with pytest.raises(ValueError, match=f"lets_core::select_by_norm: {message}"):
        ops.select_by_norm(*args, True)


@pytest.mark.parametrize("position, name", [(1, "unit"), (2, "k"), (3, "p")])
def test_public_wrapper_refuses_bools_as_integers(position, name):
    args = [torch.randn(6, 2), 1, 1, 2, True]
    args[position] = True
    with pytest.raises(ValueError, match=f"select_by_norm: {name} must be an integer, got True"):
        ops.select_by_norm(*args)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float64])
@pytest.mark.parametrize("p", [1, 2])
def test_near_ties_rank_as_the_reference_ranks_them(device, dtype, p):
    """Rows that sum to 1 (the default F init) all have one L1 score up to rounding: the compiled
    kernel summed partly in float64 and the reference in float32, so the two builds picked
    different neurons for "top-l1" Des-Nets. Scores are now float64 sums rounded to float32."""
    m = torch.tensor([[16777216.0, 1.0], [16777216.0, 0.0]], device=device)
    assert ops.select_by_norm(m, 1, 1, 1, False)[1].tolist() == [0]  # 16777217 and 16777216 tie in float32
    for seed in range(3):
        g = torch.Generator().manual_seed(seed)
        f = torch.rand(64, 48, generator=g)
        f = (f / f.sum(1, keepdim=True)).to(device=device, dtype=dtype)
        for largest in (True, False):
            got = ops.select_by_norm(f, 1, 16, p, largest)[1]
            assert torch.equal(got, select_by_norm_reference(f, 1, 16, p, largest)[1])
