"""lets_core::widen and lets_core::widen_adjoint against the reference, gradients, errors."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings, strategies as st

import lets_core.ops as ops
from lets_core.ops.widen import widen_adjoint_reference, widen_reference, widen_vector_reference
from testing import DEVICES, DTYPES, assert_matches, non_contiguous, random_leaves

widen = torch.ops.lets_core.widen
widen_adjoint = torch.ops.lets_core.widen_adjoint


def opcheck_samples(device: str) -> dict[str, list[tuple]]:
    """Arguments for torch.library.opcheck (test_ops_registry.py): shared, per-block and missing factors, chunks."""
    t = random_leaves(device, 3)
    return {
        "widen": [(t(2, 6, 3), t(2, 3, 1, 2), t(1, 2, 3)), (t(2, 4, 3), None, t(2, 1, 3)),
                  (t(1, 4, 3), t(1, 1, 2, 4), None), (t(2, 4, 3), None, None)],
        "widen_adjoint": [(t(2, 9, 5), t(2, 3, 1, 2), t(1, 2, 3)), (t(2, 4, 4), None, t(2, 1, 3))],
    }


def bad_arguments() -> dict[str, tuple[str, tuple]]:
    """Case -> (op, arguments it must refuse), for the twin-check test (test_ops_checks.py): every
    check of check_widen / check_widen_adjoint and of the factor helpers they call."""
    z, i64, f64 = torch.zeros, torch.int64, torch.float64
    cases = {
        "widen weight int64": ("widen", (z(2, 4, 3, dtype=i64), None, None)),
        "widen weight bool": ("widen", (z(2, 4, 3, dtype=torch.bool), None, None)),
        "widen weight complex": ("widen", (z(2, 4, 3, dtype=torch.complex64), None, None)),
        "widen weight float8": ("widen", (z(2, 4, 3, dtype=torch.float8_e4m3fn), None, None)),
        "widen weight 2-D": ("widen", (z(2, 6), None, None)),
        "widen f_out dtype": ("widen", (z(2, 4, 3), z(1, 1, 1, 4, dtype=f64), None)),
        "widen f_in dtype": ("widen", (z(2, 4, 3), None, z(1, 1, 3, dtype=i64))),
        "widen f_out dims": ("widen", (z(2, 4, 3), z(1, 1, 4), None)),
        "widen f_in dims": ("widen", (z(2, 4, 3), None, z(1, 3))),
        "widen f_out leading dim": ("widen", (z(2, 6, 4), z(3, 1, 2, 6), None)),
        "widen f_in leading dim": ("widen", (z(2, 6, 4), None, z(3, 1, 4))),
        "widen f_out no chunks": ("widen", (z(2, 6, 4), z(1, 0, 1, 2), None)),
        "widen chunks do not divide": ("widen", (z(2, 6, 4), z(1, 4, 1, 1), None)),
        "widen f_out last dim": ("widen", (z(2, 6, 4), z(1, 3, 1, 3), None)),
        "widen f_in last dim": ("widen", (z(2, 6, 4), None, z(1, 2, 5))),
        "widen_adjoint grad int64": ("widen_adjoint", (z(2, 4, 3, dtype=i64), None, None)),
        "widen_adjoint grad 2-D": ("widen_adjoint", (z(2, 4), None, None)),
        "widen_adjoint grad rows not chunks": ("widen_adjoint", (z(2, 5, 4), z(1, 2, 1, 2), None)),
        "widen_adjoint grad rows below dO": ("widen_adjoint", (z(2, 2, 4), z(1, 2, 3, 1), None)),
        "widen_adjoint grad columns": ("widen_adjoint", (z(2, 4, 1), None, z(1, 2, 3))),
        "widen_adjoint f_out last dim": ("widen_adjoint", (z(2, 6, 5), z(1, 2, 1, 1), None)),
        "widen_adjoint f_in last dim": ("widen_adjoint", (z(2, 4, 5), None, z(1, 2, 4))),
        "widen_adjoint f_in dtype": ("widen_adjoint", (z(2, 4, 5), None, z(1, 2, 3, dtype=f64))),
    }
    if torch.cuda.is_available():  # the device check needs a second device
        cases["widen f_in device"] = ("widen", (z(2, 4, 3, device="cuda"), None, z(1, 2, 3)))
    return cases


@st.composite
def widen_case(draw):
    """Shapes of a widening with every optional part: Δ = 0, one block, shared or per-block F."""
    b = draw(st.integers(1, 3))
    c = draw(st.integers(1, 3))
    oc, i = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    d_o, d_i = draw(st.integers(0, 4)), draw(st.integers(0, 4))
    use_out, use_in = draw(st.booleans()), draw(st.booleans())
    shared_out, shared_in = draw(st.booleans()), draw(st.booleans())
    strided = draw(st.booleans())
    seed = draw(st.integers(0, 2**31 - 1))
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(b, c * oc, i, generator=g)
    f_out = torch.rand(1 if shared_out else b, c, d_o, oc, generator=g) if use_out else None
    f_in = torch.rand(1 if shared_in else b, d_i, i, generator=g) if use_in else None
    if not use_out and c > 1:
        w = w[:, :oc]  # without f_out there are no chunks
    if strided:
        w = non_contiguous(w)
        f_in = non_contiguous(f_in) if f_in is not None else None
    return w, f_out, f_in


@pytest.mark.parametrize("device", DEVICES)
@settings(max_examples=40, deadline=None)
@given(case=widen_case(), dtype=st.sampled_from([torch.float64, *DTYPES]))
def test_widen_matches_reference(device, case, dtype):
    w, f_out, f_in = [None if t is None else t.to(device) for t in case]
    assert_matches(widen, widen_reference, [w, f_out, f_in], dtype)


@pytest.mark.parametrize("device", DEVICES)
@settings(max_examples=40, deadline=None)
@given(case=widen_case(), dtype=st.sampled_from([torch.float64, *DTYPES]))
def test_widen_adjoint_matches_reference(device, case, dtype):
    w, f_out, f_in = [None if t is None else t.to(device) for t in case]
    grad = torch.randn_like(widen_reference(w, f_out, f_in))
    assert_matches(widen_adjoint, widen_adjoint_reference, [non_contiguous(grad), f_out, f_in], dtype)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("shared", [False, True])
def test_single_column_takes_the_row_vector_form_and_agrees(device, shared):
    """A vector (one column, no F_in) is widened and adjoined as a row vector times a matrix
    (csrc/ops/widen.cpp) and its F_out gradient is a broadcast outer product (bilinear_grads):
    the same values as the reference, and gradients that pass gradcheck."""
    g = torch.Generator().manual_seed(3)
    w = torch.randn(3, 8, 1, generator=g).to(device)
    f_out = torch.randn(1 if shared else 3, 2, 5, 4, generator=g).to(device)
    assert_matches(widen, widen_reference, [w, f_out, None], torch.float32)
    big = torch.randn(3, 18, 1, generator=g).to(device)
    assert_matches(widen_adjoint, widen_adjoint_reference, [non_contiguous(big), f_out, None], torch.float32)
    leaves = [t.double().requires_grad_() for t in (w[:2, :6], f_out[:, :, :3, :3] if shared else f_out[:2, :, :3, :3])]
    assert torch.autograd.gradcheck(lambda a, f: widen(a, f, None), leaves)
    assert torch.autograd.gradgradcheck(lambda a, f: widen(a, f, None), leaves)


@pytest.mark.parametrize("device", DEVICES)
def test_adjoint_is_the_transpose_of_widen(device):
    g = torch.Generator().manual_seed(0)
    w = torch.randn(3, 6, 5, dtype=torch.float64, generator=g).to(device)
    f_out = torch.randn(3, 2, 4, 3, dtype=torch.float64, generator=g).to(device)
    f_in = torch.randn(1, 2, 5, dtype=torch.float64, generator=g).to(device)
    big = torch.randn(3, 14, 7, dtype=torch.float64, generator=g).to(device)
    lhs = (widen(w, f_out, f_in) * big).sum()
    rhs = (w * widen_adjoint(big, f_out, f_in)).sum()
    torch.testing.assert_close(lhs, rhs)


@pytest.mark.parametrize("device", DEVICES)
def test_delta_zero_is_a_copy(device):
    w = torch.randn(2, 6, 4, device=device)
    out = widen(w, torch.zeros(1, 3, 0, 2, device=device), torch.zeros(1, 0, 4, device=device))
    assert torch.equal(out, w) and out.data_ptr() != w.data_ptr()
    assert torch.equal(widen(w, None, None), w)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("shared", [False, True])
def test_widen_gradcheck_and_gradgradcheck(device, shared):
    g = torch.Generator().manual_seed(1)
    def leaf(*shape):
        return torch.randn(*shape, generator=g, dtype=torch.float64).to(device).requires_grad_()

    w, f_out, f_in = leaf(2, 6, 3), leaf(1 if shared else 2, 2, 2, 3), leaf(1 if shared else 2, 2, 3)
    assert torch.autograd.gradcheck(widen, (w, f_out, f_in))
    assert torch.autograd.gradgradcheck(widen, (w, f_out, f_in))
    big = leaf(2, 10, 5)
    assert torch.autograd.gradcheck(widen_adjoint, (big, f_out, f_in))
    assert torch.autograd.gradgradcheck(widen_adjoint, (big, f_out, f_in))


def test_public_widen_linear_and_widen_vector():
    w, b = torch.randn(2, 6, 4), torch.randn(2, 6)
    f_out, f_in = torch.rand(2, 3, 1, 2), torch.rand(1, 3, 4)
    wide, wide_b = ops.widen_linear(w, b, f_out, f_in)
    torch.testing.assert_close(wide, widen_reference(w, f_out, f_in))
    torch.testing.assert_close(wide_b, widen_vector_reference(b, f_out))
    torch.testing.assert_close(ops.widen_vector(b, f_out), widen_vector_reference(b, f_out))
    assert ops.widen_linear(w, None, None, f_in)[1] is None
    with pytest.raises(ValueError, match=r"bias must have shape \(2, 6\), got \(2, 5\)"):
        ops.widen_linear(w, torch.randn(2, 5), f_out, f_in)
    # Without f_out the bias is returned as given; its dtype used to go unchecked there.
    for factor in (None, f_out):
        with pytest.raises(ValueError, match="bias is torch.float64 on cpu but the weight is torch.float32"):
            ops.widen_linear(w, b.double(), factor, f_in)
    with pytest.raises(ValueError, match=r"vec must be \(blocks, size\), got shape \(6,\)"):
        ops.widen_vector(b[0], f_out)


@pytest.mark.parametrize("args, message", [
    ((torch.randn(2, 6), None, None), "weight must be"),
    ((torch.randn(2, 6, 4), torch.rand(2, 4, 1, 1), None), "chunks"),
    ((torch.randn(2, 6, 4), torch.rand(3, 1, 1, 6), None), "leading dim"),
    ((torch.randn(2, 6, 4), None, torch.rand(1, 2, 5)), "last dim must be 4"),
])
def test_bad_arguments_name_the_problem(args, message):
    # The op checks (the compiled kernel or the reference's checks); the wrapper leaves it to it.
    with pytest.raises(ValueError, match=f"lets_core::widen: .*{message}"):
        ops.widen_linear(args[0], None, args[1], args[2])
    with pytest.raises(ValueError, match=f"lets_core::widen: .*{message}"):
        widen(*args)


def test_dtype_mismatch_is_an_error():
    with pytest.raises(ValueError, match="f_in .*(float64|Double)"):
        widen(torch.randn(1, 2, 2), None, torch.rand(1, 1, 2, dtype=torch.float64))
