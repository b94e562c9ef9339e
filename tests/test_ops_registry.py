"""Every registered lets_core op goes through torch.library.opcheck, with the samples its test file
gives (the Aux-Net under torch.compile: test_auxnet.py)."""

from __future__ import annotations

import pytest
import torch

import lets_core  # noqa: F401  (registers the ops, loads the extension)
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
