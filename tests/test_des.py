"""Des-Net emission: selection strategies, index coherence, sizes and errors."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import lets_core
from lets_core.selection import select_width

from core_helpers import small_configs, spec_layer


@pytest.fixture(scope="module")
def aux():
    torch.manual_seed(0)
    return lets_core.AuxNet(lets_core.presets.tiny()).eval()


def test_norm_strategies_rank_residual_rows_by_their_norm(aux):
    cfg = aux.cfg
    with torch.no_grad():
        # Rows 0..3 of [F_e | F_cls]: L1 and L2 disagree between rows 1 and 2.
        f = torch.zeros(cfg.delta, 2 * cfg.learngene.embed_dim)
        f[:, 0] = 0.01 * torch.arange(cfg.delta)       # a strict order for the other rows
        f[1, :4] = 1.0                                   # L1 = 4, L2 = 2
        f[2, 0] = 3.0                                    # L1 = 3, L2 = 3
        d = cfg.learngene.embed_dim
        saved = aux.width.f_e.clone(), aux.width.f_cls.clone()
        aux.width.f_e.copy_(f[:, :d])
        aux.width.f_cls.copy_(f[:, d:])
    try:
        new = 16
        assert select_width(cfg, aux.width, new, "top-l1").residual.tolist() == sorted([1, 2] + list(range(31, 17, -1)))
        top_l2 = select_width(cfg, aux.width, 1, "top-l2").residual.tolist()
        top_l1 = select_width(cfg, aux.width, 1, "top-l1").residual.tolist()
        assert top_l2 == [2] and top_l1 == [1]
        assert select_width(cfg, aux.width, 2, "bottom-l2").residual.tolist() == [0, 3]
        assert select_width(cfg, aux.width, new, "continuous").residual.tolist() == list(range(new))
    finally:
        with torch.no_grad():
            aux.width.f_e.copy_(saved[0])
            aux.width.f_cls.copy_(saved[1])


def test_heads_are_ranked_per_group_over_all_blocks_and_qkv(aux):
    cfg = aux.cfg  # tiny: 2 groups of 2 blocks, 2 new heads of 16
    with torch.no_grad():
        saved = aux.width.f_qkv.clone()
        aux.width.f_qkv.fill_(0.01)
        aux.width.f_qkv[1, 1, 16:32] = 5.0   # group 0: head 1 large, only in block 1's F_k
        aux.width.f_qkv[2, 2, 0:16] = 5.0    # group 1: head 0 large, only in block 2's F_v
    try:
        assert [h.tolist() for h in select_width(cfg, aux.width, 16, "top-l2").heads] == [[1], [0]]
        assert [h.tolist() for h in select_width(cfg, aux.width, 16, "bottom-l1").heads] == [[0], [1]]
    finally:
        with torch.no_grad():
            aux.width.f_qkv.copy_(saved)


def test_mlp_neurons_are_ranked_per_group(aux):
    cfg = aux.cfg
    with torch.no_grad():
        saved = aux.width.f_ffn.clone()
        aux.width.f_ffn.fill_(0.01)
        aux.width.f_ffn[0, 50] = 1.0  # group 0 (blocks 0, 1)
        aux.width.f_ffn[3, 60] = 1.0  # group 1 (blocks 2, 3)
    try:
        mlp = select_width(cfg, aux.width, 16, "top-l2").mlp  # 32 of 64 new MLP neurons
        # Ties keep lower indices, so a high index is chosen only for its own large norm.
        assert 50 in mlp[0].tolist() and 60 not in mlp[0].tolist()
        assert 60 in mlp[1].tolist() and 50 not in mlp[1].tolist()
        assert all(m.tolist() == sorted(m.tolist()) and len(m) == 32 for m in mlp)
    finally:
        with torch.no_grad():
            aux.width.f_ffn.copy_(saved)


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


@pytest.mark.parametrize("heads, message", [
    (1, r"heads=1 .*\[2, 4\]"), (5, r"heads=5 .*\[2, 4\]"), (2.5, r"heads=2.5"), (None, r"heads=None"),
])
def test_bad_width_is_clear(aux, heads, message):
    with pytest.raises(lets_core.DesSizeError, match=message):
        lets_core.emit_des(aux, heads=heads, depth=4)


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
