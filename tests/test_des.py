"""Des-Net emission: the same selected indices everywhere, sizes and errors (the selection itself:
test_selection.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import lets_core
from lets_core.des import scratch_des
from lets_core.selection import select_width

from core_helpers import small_configs, spec_layer


@pytest.fixture(scope="module")
def aux():
    torch.manual_seed(0)
    # As stage 1 records it: save_des warns about a Des-Net that records none.
    return lets_core.record_input_norm(lets_core.AuxNet(lets_core.presets.tiny()).eval(),
                                       lets_core.InputNorm((0.5,), (0.25,)))


@settings(max_examples=12, deadline=None)
@given(cfg=small_configs(allow_zero_delta=False), strategy=st.sampled_from(lets_core.STRATEGIES),
       seed=st.integers(0, 2**16), data=st.data())
def test_selected_des_matches_spec_with_the_same_indices_everywhere(cfg, strategy, seed, data):
    torch.manual_seed(seed)
    aux = lets_core.AuxNet(cfg)
    heads = data.draw(st.integers(cfg.learngene.num_heads, cfg.aux_heads))
    depth = data.draw(st.integers(1, 2 * cfg.aux_depth))
    des = lets_core.emit_des(aux, heads=heads, depth=depth, strategy=strategy)
    new = heads * cfg.learngene.head_dim - cfg.learngene.embed_dim
    sel = select_width(cfg, aux.width, new, strategy)
    state = des.state_dict()
    d = cfg.learngene.embed_dim
    cols = torch.cat([torch.arange(d), d + sel.residual])
    torch.testing.assert_close(state["pos_embed"], aux.pos_embed.detach()[:, :, cols])
    head_w = aux.learngene.head_w.detach()
    expected_head = torch.cat([head_w, head_w @ aux.width.f_cls.detach()[sel.residual].T], dim=1)
    torch.testing.assert_close(state["head.weight"], expected_head)
    for i, aux_layer in enumerate(lets_core.auto_depth_plan(cfg, depth)):
        for key, value in spec_layer(aux, aux_layer, sel.residual, sel.heads, sel.mlp).items():
            torch.testing.assert_close(state[f"blocks.{i}.{key}"], value, rtol=1e-5, atol=1e-6)


def test_des_owns_independent_trainable_weights(aux):
    des = lets_core.emit_des(aux, heads=3, plan=[2, 2, 5])
    w0, w1 = des.blocks[0].attn.qkv.weight, des.blocks[1].attn.qkv.weight
    assert torch.equal(w0, w1) and w0.data_ptr() != w1.data_ptr()
    assert all(p.requires_grad and p.is_leaf for p in des.parameters())
    assert not des.training
    assert des.embed_dim == 48 and len(des.blocks) == 3 and des.blocks[0].attn.num_heads == 3


def test_des_sizes_and_param_count(aux):
    for heads in (2, 3, 4):
        for depth in (1, 3, 8, 12):
            des = lets_core.emit_des(aux, heads=heads, depth=depth)
            assert sum(p.numel() for p in des.parameters()) == lets_core.des_param_count(aux.cfg, heads, depth)
            assert des(torch.randn(1, 1, 28, 28)).shape == (1, 10)


def test_bad_strategy_depth_and_plan_are_clear(aux):
    with pytest.raises(lets_core.DesSizeError, match=r"'top-l3'.*continuous"):
        lets_core.emit_des(aux, heads=3, depth=4, strategy="top-l3")
    with pytest.raises(lets_core.DesSizeError, match="depth must be an integer >= 1, got 0"):
        lets_core.emit_des(aux, heads=3, depth=0)
    with pytest.raises(lets_core.DesSizeError, match=r"entry 1 is 8.*\[0, 7\]"):
        lets_core.emit_des(aux, heads=3, plan=[0, 8])
    with pytest.raises(ValueError, match="depth=3 disagrees with the plan's length 2"):
        lets_core.emit_des(aux, heads=3, depth=3, plan=[0, 1])
    with pytest.raises(ValueError, match="needs depth"):
        lets_core.emit_des(aux, heads=3)


@pytest.mark.parametrize("rate", [float("nan"), -1.0, 1.0, 2.0, "0.1", True])
def test_bad_drop_path_rate_is_refused_by_name(aux, rate):
    """timm takes any rate: a negative one silently turned drop-path off, NaN was written into
    config.json, and a rate above 1 failed only at the first training step."""
    with pytest.raises(ValueError, match=r"drop_path_rate must be a number in \[0, 1\), got"):
        lets_core.emit_des(aux, heads=3, depth=4, drop_path_rate=rate)
    with pytest.raises(ValueError, match=r"drop_path_rate must be a number in \[0, 1\), got"):
        scratch_des(aux.cfg, 3, 4, drop_path_rate=rate)


def test_numpy_drop_path_rate_is_stored_as_a_plain_float(aux, tmp_path):
    des = lets_core.emit_des(aux, heads=3, depth=4, drop_path_rate=np.float32(0.25))
    assert type(des.lets_model_args["drop_path_rate"]) is float
    lets_core.save_des(des, tmp_path / "des")  # json can write it
    assert lets_core.load_des(tmp_path / "des").lets_model_args["drop_path_rate"] == 0.25


@pytest.mark.parametrize("plan, kind", [({6, 0}, "set"), (frozenset({1}), "frozenset"),
                                        ({0: "first", 6: "second"}, "dict"), (5, "int"), ("06", "str"),
                                        (torch.tensor(3), "Tensor")])
def test_a_plan_must_be_an_ordered_sequence(aux, plan, kind):
    """plan={6, 0} built the plan [0, 6], a dict's keys were taken as a plan, and plan=5 failed with
    "'int' object is not iterable"."""
    with pytest.raises(lets_core.DesSizeError, match=f"a depth plan must be an ordered sequence, such as a list or "
                                                     f"tuple, of Aux layer indices .*; got {kind} "):
        lets_core.emit_des(aux, 3, plan=plan)


def test_ordered_plans_of_every_kind_still_work(aux):
    expected = lets_core.emit_des(aux, 3, plan=[6, 0]).state_dict()
    for plan in ((6, 0), np.array([6, 0]), torch.tensor([6, 0]), (i for i in (6, 0))):
        got = lets_core.emit_des(aux, 3, plan=plan).state_dict()
        assert all(torch.equal(got[k], expected[k]) for k in expected)
    assert len(lets_core.emit_des(aux, 3, plan=range(2)).blocks) == 2


def test_wrong_objects_are_named_and_wrappers_unwrapped(aux):
    """Each of these failed with a bare AttributeError ("'LetsConfig' object has no attribute 'cfg'")."""
    from timm.utils import ModelEmaV3
    cfg = aux.cfg
    with pytest.raises(TypeError, match="emit_des needs an AuxNet, got LetsConfig; build one with lets_core.AuxNet"):
        lets_core.emit_des(cfg, 3, 6)
    with pytest.raises(TypeError, match="emit_des needs an AuxNet, got ModelEmaV3; .*pass its .module"):
        lets_core.emit_des(ModelEmaV3(aux), 3, 6)
    with pytest.raises(TypeError, match="emit_des needs an AuxNet, got str"):
        lets_core.emit_des("bundle", 3, 6)
    with pytest.raises(TypeError, match="des_param_count needs a LetsConfig, got AuxNet; pass its .cfg"):
        lets_core.des_param_count(aux, 3, 6)
    expected = lets_core.emit_des(aux, 3, 6).state_dict()
    for wrapped in (torch.nn.DataParallel(aux), ModelEmaV3(aux).module):
        got = lets_core.emit_des(wrapped, 3, 6).state_dict()
        assert all(torch.equal(got[k], expected[k]) for k in expected)


def test_a_des_net_emitted_under_inference_mode_fine_tunes(aux):
    """Emitted inside torch.inference_mode() its weights were inference tensors, and its first
    training step failed with "Inference tensors cannot be saved for backward"."""
    with torch.inference_mode():
        des = lets_core.emit_des(aux, 3, 6, "top-l2")
    expected = lets_core.emit_des(aux, 3, 6, "top-l2").state_dict()
    assert not any(p.is_inference() for p in des.parameters())
    assert all(torch.equal(des.state_dict()[k], expected[k]) for k in expected)
    opt = torch.optim.SGD(des.parameters(), lr=0.1)
    torch.nn.functional.cross_entropy(des.train()(torch.randn(2, 1, 28, 28)), torch.tensor([1, 2])).backward()
    opt.step()
    assert not torch.equal(des.head.weight, expected["head.weight"])
