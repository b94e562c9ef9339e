"""Every registered lets_core op goes through torch.library.opcheck, with the samples its test file
gives (the Aux-Net under torch.compile: test_auxnet.py)."""

from __future__ import annotations

import pytest
import torch

import lets_core  # registers the ops, loads the extension
import lets_core.ops as ops
from lets_core.ops import _registry
from testing import DEVICES, per_op


def registered_ops() -> set[str]:
    return {name.split("::", 1)[1] for name in torch._C._dispatch_get_all_op_names()
            if name.startswith("lets_core::")}


def samples(device: str) -> dict[str, list[tuple]]:
    """Sample arguments per op, from each op's test file (``opcheck_samples`` in tests/test_ops_<op>.py)."""
    return per_op("opcheck_samples", device)


def test_every_registered_op_has_samples():
    assert registered_ops() == set(_registry.OPS) == set(samples("cpu"))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("op_name", sorted(registered_ops()))
def test_opcheck(device, op_name):
    op = getattr(torch.ops.lets_core, op_name)
    for args in samples(device)[op_name]:
        torch.library.opcheck(op, args)


@pytest.mark.parametrize("device", DEVICES)
def test_autocast_is_decided_at_the_op_boundary(device):
    # Under autocast a matmul op computes on inputs cast to the autocast dtype, with autocast off
    # inside (so compiled and reference kernels agree), and returns the inputs' dtype.
    import lets_core.ops as ops

    gen = torch.Generator().manual_seed(5)
    stack = torch.randn(4, 6, 5, generator=gen).to(device)
    coeff = torch.randn(2, 2, generator=gen).to(device)
    with torch.autocast(device, dtype=torch.bfloat16):
        got = ops.group_mix(stack, coeff)
        ranked = ops.select_by_norm(stack[0], 1, 3, 2, True)  # not a matmul op: untouched by the boundary
    expected = torch.ops.lets_core.group_mix(stack.bfloat16(), coeff.bfloat16()).float()
    assert got.dtype == torch.float32 and torch.equal(got, expected)
    assert ranked[0].dtype == torch.float32
    assert {"widen", "widen_adjoint", "group_mix", "widen_mix"} == _registry.AUTOCAST_OPS


def test_public_wrappers_and_the_aux_net_run_on_meta_tensors():
    """Shape inference without memory (a paper-size Aux-Net counted on meta): the autocast
    boundary used to ask torch about autocast on "meta", which raises."""
    assert ops.group_mix(torch.randn(4, 3, device="meta"), torch.rand(2, 2, device="meta")).shape == (2, 3)
    with torch.device("meta"):
        aux = lets_core.AuxNet(lets_core.presets.tiny())
    assert aux(torch.empty(2, 1, 28, 28, device="meta")).shape == (2, 10)
