"""The six invariants of the specification, on the tiny preset and on random small layouts."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import lets_core
from lets_core.config import LearngeneConfig, LetsConfig, TransformConfig

from core_helpers import small_configs

SETTINGS = settings(max_examples=15, deadline=None)


def _inputs(cfg: LetsConfig, n: int = 2) -> torch.Tensor:
    lg = cfg.learngene
    return torch.randn(n, lg.in_chans, lg.img_size, lg.img_size)


# Invariant 1 ---------------------------------------------------------------------------------
def test_paper_parameter_counts():
    cfg = lets_core.presets.paper()
    aux = lets_core.AuxNet(cfg)
    assert sum(p.numel() for p in aux.learngene.parameters()) == 14_952_040
    lg_trainable = sum(p.numel() for p in aux.learngene.parameters() if p.requires_grad)
    assert lg_trainable == 14_876_776
    assert aux.width.f_e.numel() == 147_456 and aux.width.f_cls.numel() == 147_456
    per_layer_f = (aux.width.f_qkv.numel() + aux.width.f_ffn.numel()) // cfg.learngene.depth
    assert per_layer_f == 2_801_664
    assert aux.depth.g.numel() == 256
    assert aux.pos_embed.numel() == 150_528
    assert aux.trainable_parameter_count() == 37_735_784
    assert round(lets_core.des_param_count(cfg, 6, 12) / 1e6, 1) == 22.0
    assert round(lets_core.des_param_count(cfg, 12, 12) / 1e6, 1) == 86.6


# Invariants 2 and 6 ------------------------------------------------------------------------------
def _check_full_selection_is_aux(aux: lets_core.AuxNet, strategy: str) -> None:
    cfg = aux.cfg
    x = _inputs(cfg)
    with torch.no_grad():
        expected = aux.eval()(x)
        des = lets_core.emit_des(aux, heads=cfg.aux_heads, depth=cfg.aux_depth, strategy=strategy,
                                 plan=list(range(cfg.aux_depth)))
        torch.testing.assert_close(des(x), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("strategy", lets_core.STRATEGIES)
def test_full_des_is_aux_tiny(strategy):
    torch.manual_seed(0)
    _check_full_selection_is_aux(lets_core.AuxNet(lets_core.presets.tiny()), strategy)


@SETTINGS
@given(cfg=small_configs(), strategy=st.sampled_from(lets_core.STRATEGIES), seed=st.integers(0, 2**16))
def test_full_des_is_aux_random(cfg, strategy, seed):
    torch.manual_seed(seed)
    _check_full_selection_is_aux(lets_core.AuxNet(cfg), strategy)


def test_auto_plan_at_aux_depth_is_identity():
    cfg = lets_core.presets.tiny()
    assert lets_core.auto_depth_plan(cfg, cfg.aux_depth) == list(range(cfg.aux_depth))
    torch.manual_seed(1)
    aux = lets_core.AuxNet(cfg).eval()
    x = _inputs(cfg)
    des = lets_core.emit_des(aux, heads=cfg.aux_heads, depth=cfg.aux_depth)
    torch.testing.assert_close(des(x), aux(x).detach(), rtol=1e-5, atol=1e-5)


# Invariant 3 ------------------------------------------------------------------------------------
def _one_hot_g_(aux: lets_core.AuxNet, pick: int) -> None:
    with torch.no_grad():
        aux.depth.g.zero_()
        aux.depth.g[..., pick] = 1.0


@pytest.mark.parametrize("pick", [0, 1])
def test_zero_delta_one_hot_g_copies_learngene_blocks(pick):
    lg = LearngeneConfig(img_size=8, patch_size=4, in_chans=1, num_classes=3, embed_dim=16, depth=4,
                         head_dim=8, mlp_ratio=2.0)
    cfg = LetsConfig(learngene=lg, aux_embed_dim=16, aux_depth=8, transform=TransformConfig(2, 2))
    torch.manual_seed(2)
    aux = lets_core.AuxNet(cfg)
    _one_hot_g_(aux, pick)
    state = aux.generate()
    learngene = aux.learngene.timm_state_dict()
    for i in range(cfg.aux_depth):
        group = cfg.group_of_row(cfg.row_of(i))
        source = cfg.transform.group_size * group + pick
        for key in ("norm1.weight", "attn.qkv.weight", "attn.qkv.bias", "attn.proj.weight", "mlp.fc1.weight",
                    "mlp.fc2.bias", "norm2.bias"):
            torch.testing.assert_close(state[f"blocks.{i}.{key}"], learngene[f"blocks.{source}.{key}"],
                                       rtol=0, atol=0)


def test_zero_delta_aux_equals_learngene_network():
    """With Δ = 0, one Aux layer per learngene block and one-hot G, the Aux-Net is the learngene ViT."""
    lg = LearngeneConfig(img_size=8, patch_size=4, in_chans=2, num_classes=3, embed_dim=16, depth=3,
                         head_dim=8, mlp_ratio=2.0)
    cfg = LetsConfig(learngene=lg, aux_embed_dim=16, aux_depth=3, transform=TransformConfig(1, 1))
    torch.manual_seed(3)
    aux = lets_core.AuxNet(cfg).eval()
    _one_hot_g_(aux, 0)
    with torch.no_grad():
        aux.pos_embed.copy_(aux.learngene.pos_embed)
    x = _inputs(cfg)
    torch.testing.assert_close(aux(x), aux.learngene.to_timm().eval()(x), rtol=0, atol=0)


# Invariant 5 ------------------------------------------------------------------------------------
@SETTINGS
@given(cfg=small_configs(allow_zero_delta=False), seed=st.integers(0, 2**16))
def test_gradients_reach_every_parameter(cfg, seed):
    torch.manual_seed(seed)
    aux = lets_core.AuxNet(cfg)
    aux(_inputs(cfg, 3)).square().sum().backward()
    for name, p in aux.named_parameters():
        if name == "learngene.pos_embed":
            assert not p.requires_grad and p.grad is None  # replaced by the Aux-Net's own
            continue
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name
    # Every F and G entry is used, so each tensor must receive a non-zero gradient.
    for name in ("width.f_e", "width.f_qkv", "width.f_ffn", "width.f_cls", "depth.g", "learngene.blocks.qkv_w"):
        assert dict(aux.named_parameters())[name].grad.abs().sum() > 0, name
