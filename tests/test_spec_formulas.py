"""The public generation ops against the specification's formulas, written out literally."""

from __future__ import annotations

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import lets_core.ops as ops

from core_helpers import expand

SETTINGS = settings(max_examples=25, deadline=None)


@SETTINGS
@given(blocks=st.integers(1, 3), chunks=st.integers(1, 3), out=st.integers(1, 4), inp=st.integers(1, 4),
       d_out=st.integers(0, 3), d_in=st.integers(0, 3), share_out=st.booleans(), share_in=st.booleans(),
       seed=st.integers(0, 2**16))
def test_widen_is_e_fout_w_e_fin_t(blocks, chunks, out, inp, d_out, d_in, share_out, share_in, seed):
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(blocks, chunks * out, inp, generator=g, dtype=torch.float64)
    b = torch.randn(blocks, chunks * out, generator=g, dtype=torch.float64)
    f_out = torch.randn(1 if share_out else blocks, chunks, d_out, out, generator=g, dtype=torch.float64)
    f_in = torch.randn(1 if share_in else blocks, d_in, inp, generator=g, dtype=torch.float64)
    w_hat, b_hat = ops.widen_linear(w, b, f_out, f_in)
    for j in range(blocks):
        fo, fi = f_out[0 if share_out else j], f_in[0 if share_in else j]
        expect_w = torch.cat([expand(fo[c]) @ w[j, c * out:(c + 1) * out] @ expand(fi).T for c in range(chunks)])
        expect_b = torch.cat([expand(fo[c]) @ b[j, c * out:(c + 1) * out] for c in range(chunks)])
        torch.testing.assert_close(w_hat[j], expect_w)
        torch.testing.assert_close(b_hat[j], expect_b)
        torch.testing.assert_close(ops.widen_vector(b, f_out)[j], expect_b)


def test_widen_with_one_side_only():
    w = torch.randn(2, 3, 4, dtype=torch.float64)
    f_in = torch.randn(1, 2, 4, dtype=torch.float64)
    w_hat, b_hat = ops.widen_linear(w, None, None, f_in)
    assert b_hat is None
    torch.testing.assert_close(w_hat, torch.stack([wj @ expand(f_in[0]).T for wj in w]))
    f_out = torch.randn(2, 1, 5, 3, dtype=torch.float64)
    torch.testing.assert_close(ops.widen_linear(w, None, f_out, None)[0],
                               torch.stack([expand(f_out[j, 0]) @ w[j] for j in range(2)]))


@SETTINGS
@given(s=st.integers(1, 3), groups=st.integers(1, 3), rows_per_group=st.integers(1, 3), chunks=st.integers(1, 3),
       seed=st.integers(0, 2**16))
def test_group_mix_is_the_depth_formula(s, groups, rows_per_group, chunks, seed):
    g = torch.Generator().manual_seed(seed)
    stack = torch.randn(s * groups, chunks * 2, 3, generator=g, dtype=torch.float64)
    coeff = torch.randn(groups * rows_per_group, chunks, s, generator=g, dtype=torch.float64)
    mixed = ops.group_mix(stack, coeff)
    plain = ops.group_mix(stack, coeff[:, 0])
    for r in range(groups * rows_per_group):
        grp = r // rows_per_group
        for c in range(chunks):
            part = slice(2 * c, 2 * c + 2)
            expect = sum(coeff[r, c, m] * stack[s * grp + m, part] for m in range(s))
            torch.testing.assert_close(mixed[r, part], expect)
        torch.testing.assert_close(plain[r], sum(coeff[r, 0, m] * stack[s * grp + m] for m in range(s)))


@SETTINGS
@given(units=st.integers(1, 8), unit=st.integers(1, 3), cols=st.integers(1, 4), p=st.sampled_from([1, 2]),
       largest=st.booleans(), data=st.data())
def test_select_by_norm_is_a_stable_ranking(units, unit, cols, p, largest, data):
    k = data.draw(st.integers(0, units))
    # Small integers make ties likely, which exercises the tie rule.
    m = torch.tensor(data.draw(st.lists(st.integers(-2, 2), min_size=units * unit * cols,
                                        max_size=units * unit * cols)), dtype=torch.float32).reshape(-1, cols)
    rows, idx = ops.select_by_norm(m, unit, k, p, largest)
    norms = [m[u * unit:(u + 1) * unit].abs().pow(p).sum().item() for u in range(units)]
    order = sorted(range(units), key=lambda u: (-norms[u] if largest else norms[u], u))
    assert idx.tolist() == sorted(order[:k])
    assert torch.equal(rows, torch.cat([m[u * unit:(u + 1) * unit] for u in idx.tolist()]) if k else m[:0])


def test_ops_are_differentiable_in_float64():
    torch.manual_seed(0)
    w = torch.randn(2, 6, 3, dtype=torch.float64, requires_grad=True)
    b = torch.randn(2, 6, dtype=torch.float64, requires_grad=True)
    f_out = torch.randn(2, 3, 2, 2, dtype=torch.float64, requires_grad=True)
    f_in = torch.randn(1, 2, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda *a: ops.widen_linear(*a), (w, b, f_out, f_in))
    assert torch.autograd.gradcheck(ops.widen_vector, (b, f_out))
    coeff = torch.randn(4, 3, 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(ops.group_mix, (w, coeff))
    assert torch.autograd.gradcheck(lambda m: ops.select_by_norm(m, 2, 1, 2, True)[0],
                                    (torch.randn(6, 3, dtype=torch.float64, requires_grad=True),))


def test_op_argument_errors_name_the_shapes():
    import pytest
    w = torch.randn(2, 6, 3)
    with pytest.raises(ValueError, match=r"f_in last dim must be 3"):
        ops.widen_linear(w, None, None, torch.randn(1, 2, 4))
    with pytest.raises(ValueError, match=r"f_out leading dim must be 1 \(shared\) or the block count 2, got 3"):
        ops.widen_linear(w, None, torch.randn(3, 1, 2, 6), None)
    with pytest.raises(ValueError, match=r"4 chunks, which do not divide the weight's 6 rows"):
        ops.widen_linear(w, None, torch.randn(1, 4, 2, 1), None)
    with pytest.raises(ValueError, match=r"group size 3 must be >= 1 and divide the block count 2"):
        ops.group_mix(w, torch.randn(2, 3))
    with pytest.raises(ValueError, match=r"k must be in \[0, 3\]"):
        ops.select_by_norm(torch.randn(6, 2), 2, 4, 2, True)
    with pytest.raises(ValueError, match=r"p must be 1 or 2, got 3"):
        ops.select_by_norm(torch.randn(6, 2), 2, 1, 3, True)
