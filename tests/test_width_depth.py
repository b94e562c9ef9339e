"""Initialization schemes of F and G."""

from __future__ import annotations

import dataclasses

import pytest
import torch

import lets_core
from lets_core.width_depth import DepthTransform, WidthTransform, init_f_, init_g_


def test_paper_f_rows_are_convex_combinations():
    torch.manual_seed(0)
    width = WidthTransform(lets_core.presets.tiny())
    for name, f in width.named_parameters():
        assert (f >= 0).all(), name
        torch.testing.assert_close(f.sum(dim=-1), torch.ones(f.shape[:-1]), msg=name)
        assert f.std() > 0, name  # random, not a constant


def test_net2net_f_rows_copy_one_neuron_plus_noise():
    torch.manual_seed(0)
    f = torch.empty(500, 7)
    init_f_(f, "net2net", noise=0.01)
    top = f.max(dim=1)
    assert ((top.values - 1).abs() < 0.06).all()
    rest = f.clone()
    rest[torch.arange(500), top.indices] = 0
    assert rest.abs().max() < 0.06 and 0.005 < rest.std() < 0.015
    assert len(set(top.indices.tolist())) == 7  # every old neuron gets picked somewhere


def test_paper_g_favours_block_of_first_layer_of_each_row():
    torch.manual_seed(0)
    base = lets_core.presets.paper()
    for tie in (1, 2):
        cfg = dataclasses.replace(base, transform=dataclasses.replace(base.transform, tie_length=tie))
        g = DepthTransform(cfg).g.detach()
        torch.testing.assert_close(g.sum(dim=-1), torch.ones(g.shape[:-1]))
        s = cfg.transform.group_size
        for row in range(cfg.num_rows):
            favoured = (row * tie) % s
            assert (g[..., row, favoured] > 1 / 1.03 - 1e-6).all()
            others = torch.cat([g[..., row, :favoured], g[..., row, favoured + 1:]], dim=-1)
            assert (others < 0.03).all()


def test_normal_f_rows_are_the_mean_plus_a_unit_size_random_combination():
    torch.manual_seed(0)
    f = torch.empty(4000, 64)
    init_f_(f, "normal", noise=0.0)
    torch.testing.assert_close(f.sum(dim=1), torch.ones(4000))  # widened LayerNorm gains start at 1
    noise = f - 1 / 64
    # A new neuron's random part over n uncorrelated unit-variance old neurons has variance ~1
    # (n - 1 free directions after centring).
    assert abs(noise.pow(2).sum(dim=1).mean().item() - 63 / 64) < 0.02


def test_spread_g_starts_every_row_near_its_share_of_the_group():
    torch.manual_seed(0)
    for preset in (lets_core.presets.paper(), lets_core.presets.tiny()):
        cfg = dataclasses.replace(preset, transform=dataclasses.replace(preset.transform, g_init="spread"))
        g = DepthTransform(cfg).g.detach()
        s, rows_per_group = cfg.transform.group_size, cfg.num_rows // cfg.num_groups
        favoured = g.argmax(dim=-1)  # (types, kinds, rows)
        expected = torch.tensor([(r % rows_per_group) * s // rows_per_group for r in range(cfg.num_rows)])
        assert torch.equal(favoured, expected.expand_as(favoured))
        # With s = t = 2 the paper's rule favours block 0 of every group; spread uses both blocks.
        assert set(expected.tolist()) == set(range(s))
        torch.testing.assert_close(g.sum(dim=-1), torch.ones(g.shape[:-1]))


def test_uniform_g_is_the_group_average():
    g = torch.empty(8, 2, 4, 3)
    init_g_(g, "uniform", noise=0.03, tie_length=2)
    assert torch.equal(g, torch.full_like(g, 1 / 3))


def test_unknown_schemes_are_named():
    with pytest.raises(ValueError, match="unknown F init 'ones'"):
        init_f_(torch.empty(2, 2), "ones", 0.0)
    with pytest.raises(ValueError, match="unknown G init 'ones'"):
        init_g_(torch.empty(2, 2), "ones", 0.0, 1)
