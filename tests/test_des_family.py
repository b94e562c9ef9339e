"""emit_des_many: one generation, many Des-Nets, each equal to emit_des."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import lets_core
from lets_core import emit_des_many

from core_helpers import small_configs


def _assert_same_model(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for key in sb:
        torch.testing.assert_close(sa[key], sb[key], rtol=1e-6, atol=1e-7, msg=key)
    assert a.lets_model_args == b.lets_model_args


@settings(max_examples=8, deadline=None)
@given(cfg=small_configs(), strategy=st.sampled_from(lets_core.STRATEGIES), seed=st.integers(0, 2**16),
       data=st.data())
def test_many_equals_one_by_one(cfg, strategy, seed, data):
    torch.manual_seed(seed)
    aux = lets_core.AuxNet(cfg)
    sizes = data.draw(st.lists(st.tuples(st.integers(cfg.learngene.num_heads, cfg.aux_heads),
                                         st.integers(1, 2 * cfg.aux_depth)), min_size=1, max_size=4))
    for (heads, depth), model in zip(sizes, emit_des_many(aux, sizes, strategy)):
        _assert_same_model(model, lets_core.emit_des(aux, heads, depth, strategy))


def test_explicit_plans_and_independent_weights():
    torch.manual_seed(0)
    aux = lets_core.AuxNet(lets_core.presets.tiny())
    first, second = emit_des_many(aux, [(3, 3), (4, 2)], "top-l1", plans=[[1, 1, 6], None])
    _assert_same_model(first, lets_core.emit_des(aux, 3, plan=[1, 1, 6], strategy="top-l1"))
    _assert_same_model(second, lets_core.emit_des(aux, 4, 2, strategy="top-l1"))
    assert first.blocks[0].mlp.fc1.weight.data_ptr() != first.blocks[1].mlp.fc1.weight.data_ptr()


def test_errors_are_clear():
    aux = lets_core.AuxNet(lets_core.presets.tiny())
    with pytest.raises(ValueError, match="got 1 plans for 2 sizes"):
        emit_des_many(aux, [(2, 2), (3, 3)], plans=[None])
    with pytest.raises(lets_core.DesSizeError, match=r"heads=9"):
        emit_des_many(aux, [(2, 2), (9, 3)])
    # A depth that disagrees with an explicit plan is refused, as emit_des(heads, depth, plan=...) does
    # (it used to be dropped: H3-L6 with a 3-layer plan gave an H3-L3 network).
    with pytest.raises(ValueError, match="depth=6 disagrees with the plan's length 3"):
        emit_des_many(aux, [(3, 6)], plans=[[0, 1, 2]])
    with pytest.raises(lets_core.DesSizeError, match=r"\(heads, depth\) pair, got \(3,\)"):
        emit_des_many(aux, [(3,)])
    with pytest.raises(lets_core.DesSizeError, match="unknown selection strategy 'bogus'"):
        emit_des_many(aux, [], strategy="bogus")  # checked even with no size to emit
    with pytest.raises(lets_core.DesSizeError, match=r"\(heads, depth\) pair, got \(2, 3, 1\)"):
        aux(torch.randn(2, 1, 28, 28), des_sizes=[(2, 3, 1)])


def test_wrappers_wrong_objects_and_unordered_requests():
    from timm.utils import ModelEmaV3
    aux = lets_core.AuxNet(lets_core.presets.tiny()).eval()
    expected = lets_core.emit_des(aux, 3, 6).state_dict()
    got = emit_des_many(torch.nn.DataParallel(aux), [(3, 6)])[0].state_dict()
    assert all(torch.equal(got[k], expected[k]) for k in expected)
    with pytest.raises(TypeError, match="emit_des_many needs an AuxNet, got ModelEmaV3; .*pass its .module"):
        emit_des_many(ModelEmaV3(aux), [(3, 6)])
    with pytest.raises(TypeError, match="emit_des_many needs an AuxNet, got LetsConfig"):
        emit_des_many(aux.cfg, [(3, 6)])
    # The i-th model is the i-th size's and plans pair with sizes by position: a set has no order.
    with pytest.raises(lets_core.DesSizeError, match=r"sizes must be an ordered sequence.*; got set"):
        emit_des_many(aux, {(2, 4), (3, 6)})
    with pytest.raises(lets_core.DesSizeError, match=r"plans must be an ordered sequence.*; got set"):
        emit_des_many(aux, [(3, 2), (3, 2)], plans={(0, 1), (1, 0)})


def test_des_nets_emitted_under_inference_mode_fine_tune():
    """As for emit_des: their weights were inference tensors, which fail at the first training step."""
    torch.manual_seed(0)
    aux = lets_core.AuxNet(lets_core.presets.tiny()).eval()
    with torch.inference_mode():
        models = emit_des_many(aux, [(3, 6), (2, 2)])
    for model, expected in zip(models, emit_des_many(aux, [(3, 6), (2, 2)])):
        assert not any(p.is_inference() for p in model.parameters())
        _assert_same_model(model, expected)
        model.train()(torch.randn(2, 1, 28, 28)).sum().backward()
        assert all(p.grad is not None for p in model.parameters())
