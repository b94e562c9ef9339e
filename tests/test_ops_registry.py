"""Every registered lets_core op goes through torch.library.opcheck, and the Aux-Net compiles."""

from __future__ import annotations

import os

import pytest
import torch

import lets_core
from lets_core.ops import _library
from testing import DEVICES

# Inductor's C++ code generation takes ~2.5 min on the 2-core CI machine; "aot_eager" runs the same
# Dynamo capture (fullgraph) and AOTAutograd (fake kernels, autograd formulas, functionalization)
# and executes the graph eagerly. LETS_CORE_COMPILE_BACKEND=inductor runs the full compiler.
BACKEND = os.environ.get("LETS_CORE_COMPILE_BACKEND", "aot_eager")


def registered_ops() -> set[str]:
    return {name.split("::", 1)[1] for name in torch._C._dispatch_get_all_op_names()
            if name.startswith("lets_core::")}


def samples(device: str) -> dict[str, list[tuple]]:
    """Sample arguments per op, covering shared/per-block factors, missing factors and chunks."""
    g = torch.Generator().manual_seed(3)

    def t(*shape, grad=True):
        x = torch.randn(*shape, generator=g, dtype=torch.float64).to(device)
        return x.requires_grad_(grad)

    return {
        "widen": [(t(2, 6, 3), t(2, 3, 1, 2), t(1, 2, 3)), (t(2, 4, 3), None, t(2, 1, 3)),
                  (t(1, 4, 3), t(1, 1, 2, 4), None), (t(2, 4, 3), None, None)],
        "widen_adjoint": [(t(2, 9, 5), t(2, 3, 1, 2), t(1, 2, 3)), (t(2, 4, 4), None, t(2, 1, 3))],
        "group_mix": [(t(4, 6, 2), t(6, 3, 2)), (t(4, 3), t(2, 2))],
        # plans 0-3: blocks, out-first (shared f_in), in-first (shared f_out), mix-first
        "widen_mix": [(t(4, 4, 3), t(4, 1, 2, 4), t(4, 2, 3), t(4, 2), 0),
                      (t(4, 6, 3), t(4, 3, 1, 2), t(1, 2, 3), t(6, 3, 2), 1),
                      (t(4, 4, 3), t(1, 1, 2, 4), t(4, 1, 3), t(2, 2), 2),
                      (t(2, 4, 1), t(1, 1, 2, 4), None, t(2, 2), 3)],
        "select_by_norm": [(t(8, 3), 2, 2, 2, True), (t(8, 3), 1, 3, 1, False), (t(3, 8, 2), 2, 2, 2, True)],
    }


def test_every_registered_op_has_samples():
    assert registered_ops() == set(_library.OPS) == set(samples("cpu"))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("op_name", sorted(registered_ops()))
def test_opcheck(device, op_name):
    op = getattr(torch.ops.lets_core, op_name)
    for args in samples(device)[op_name]:
        torch.library.opcheck(op, args)


def test_torch_compile_fullgraph_forward_backward_of_auxnet():
    torch.manual_seed(0)
    aux = lets_core.AuxNet(lets_core.presets.tiny())
    x = torch.randn(2, 1, 28, 28)
    params = [p for p in aux.parameters() if p.requires_grad]
    eager_out = aux(x)
    eager_grads = torch.autograd.grad(eager_out.square().sum(), params)
    compiled = torch.compile(aux, fullgraph=True, backend=BACKEND)
    out = compiled(x)
    grads = torch.autograd.grad(out.square().sum(), params)
    torch.testing.assert_close(out, eager_out, rtol=1e-4, atol=1e-5)
    for ge, gc in zip(eager_grads, grads):
        torch.testing.assert_close(gc, ge, rtol=1e-3, atol=1e-5)
