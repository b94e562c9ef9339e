"""The Aux-Net (lets_core/auxnet.py): its learngene must match its configuration, it compiles with
torch.compile(fullgraph=True), and shared_generation gives one generation per optimizer step under
gradient accumulation."""

from __future__ import annotations

import copy
import dataclasses
import os

import pytest
import torch

import lets_core

# Inductor's C++ code generation takes ~2.5 min on the 2-core CI machine; "aot_eager" runs the same
# Dynamo capture (fullgraph) and AOTAutograd (fake kernels, autograd formulas, functionalization)
# and executes the graph eagerly. LETS_CORE_COMPILE_BACKEND=inductor runs the full compiler.
BACKEND = os.environ.get("LETS_CORE_COMPILE_BACKEND", "aot_eager")


def _grads(model):
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def test_accumulated_gradients_match_per_micro_batch_generation():
    torch.manual_seed(0)
    aux = lets_core.AuxNet(lets_core.presets.tiny())
    twin = copy.deepcopy(aux)
    batches = [(torch.randn(3, 1, 28, 28), torch.randint(0, 10, (3,))) for _ in range(3)]
    for x, y in batches:
        torch.nn.functional.cross_entropy(aux(x), y).backward()
    with twin.shared_generation():
        for x, y in batches:
            torch.nn.functional.cross_entropy(twin(x), y).backward()
        assert all(p.grad is None for p in twin.parameters())  # nothing reaches them before the exit
    expected, got = _grads(aux), _grads(twin)
    assert expected.keys() == got.keys() and len(got) == sum(p.requires_grad for p in aux.parameters())
    for name in expected:
        torch.testing.assert_close(got[name], expected[name], rtol=1e-4, atol=1e-6, msg=name)


def test_state_is_restored_after_errors_and_nesting_is_refused():
    aux = lets_core.AuxNet(lets_core.presets.tiny())
    with pytest.raises(ZeroDivisionError):
        with aux.shared_generation():
            1 / 0
    assert aux._shared_state is None and all(p.grad is None for p in aux.parameters())
    with aux.shared_generation():
        with pytest.raises(RuntimeError, match="cannot be nested"):
            with aux.shared_generation():
                pass
    x = torch.randn(2, 1, 28, 28)
    with torch.no_grad():
        plain = aux(x)
        with aux.shared_generation():
            torch.testing.assert_close(aux(x), plain)


def test_aux_rejects_learngene_of_other_config():
    shallower = dataclasses.replace(lets_core.presets.tiny().learngene, depth=2)
    with pytest.raises(ValueError, match="differs from the Aux-Net"):
        lets_core.AuxNet(lets_core.presets.tiny(), learngene=lets_core.Learngene(shallower))


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
